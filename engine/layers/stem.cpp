// The one-channel convolution into 16 channels by hand (stem.h).
#include "engine/layers/stem.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace cajal::engine::detail {
namespace {

constexpr std::int64_t kChannels = 16;
constexpr std::int64_t kTapsW = 3;  // kernel width

// The sizes one output row reads.
struct StemRow {
  const float* const* rows;  // per (kernel depth, kernel height) tap: its padded input row or null
  const float* taps;         // [kd * kh * kw][16]: each tap's weights of the 16 channels
  const float* bias;         // 16 or null
  std::int64_t kernel_rows;  // kd * kh
};

// Output voxels [w0, w0 + kV) of one output row, each one vector of its 16 channels: the three
// taps along W of every input row, in order, broadcast from the padded row and multiplied by the
// tap's weights.
template <int kV, int kStride>
__attribute__((target("avx512f"))) void stem_voxels(const StemRow& r, const float* residual,
                                                    float* out, std::int64_t w0) {
  __m512 acc[kV];
  const __m512 bias = r.bias == nullptr ? _mm512_setzero_ps() : _mm512_loadu_ps(r.bias);
#pragma GCC unroll 16
  for (int v = 0; v < kV; ++v) {
    acc[v] = residual == nullptr
                 ? bias
                 : _mm512_add_ps(bias, _mm512_loadu_ps(residual + (w0 + v) * kChannels));
  }
  for (std::int64_t k = 0; k < r.kernel_rows; ++k) {
    if (r.rows[k] == nullptr) {
      continue;  // an input row in the padding
    }
    const float* row = r.rows[k] + w0 * kStride;
    const float* taps = r.taps + k * kTapsW * kChannels;
    const __m512 w0v = _mm512_loadu_ps(taps);
    const __m512 w1v = _mm512_loadu_ps(taps + kChannels);
    const __m512 w2v = _mm512_loadu_ps(taps + 2 * kChannels);
#pragma GCC unroll 16
    for (int v = 0; v < kV; ++v) {
      acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(row[v * kStride]), w0v, acc[v]);
      acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(row[v * kStride + 1]), w1v, acc[v]);
      acc[v] = _mm512_fmadd_ps(_mm512_set1_ps(row[v * kStride + 2]), w2v, acc[v]);
    }
  }
#pragma GCC unroll 16
  for (int v = 0; v < kV; ++v) {
    _mm512_storeu_ps(out + (w0 + v) * kChannels, acc[v]);
  }
}

template <int kStride>
void stem_row(const StemRow& r, const float* residual, float* out, std::int64_t width) {
  std::int64_t w = 0;
  for (; w + 16 <= width; w += 16) {
    stem_voxels<16, kStride>(r, residual, out, w);
  }
  if (w + 8 <= width) {
    stem_voxels<8, kStride>(r, residual, out, w);
    w += 8;
  }
  if (w + 4 <= width) {
    stem_voxels<4, kStride>(r, residual, out, w);
    w += 4;
  }
  for (; w < width; ++w) {
    stem_voxels<1, kStride>(r, residual, out, w);
  }
}

}  // namespace

bool stem_takes(const ConvolutionParams& p) {
  const auto rank = p.kernel_size.size();
  return p.in_channels == 1 && p.out_channels == kChannels && p.groups == 1 &&
         (rank == 2 || rank == 3) && p.dilation == Dims(rank, 1) &&
         p.kernel_size.back() == kTapsW && (p.stride.back() == 1 || p.stride.back() == 2);
}

void stem_convolution(const float* x, const Dims& x_dims, const float* weights, const float* bias,
                      const float* residual, float* y, const Dims& y_dims,
                      const ConvolutionParams& p, int threads) {
  CAJAL_CHECK(stem_takes(p) && x_dims.size() == p.kernel_size.size() + 2 &&
              y_dims.size() == x_dims.size() && x_dims[1] == 1 && y_dims[1] == kChannels)
      << "stem_convolution: input " << to_string(x_dims) << ", output " << to_string(y_dims);
  const bool three = x_dims.size() == 5;
  const std::int64_t batch = x_dims[0];
  const std::int64_t depth = three ? x_dims[2] : 1;
  const std::int64_t height = x_dims[three ? 3 : 2];
  const std::int64_t width = x_dims[three ? 4 : 3];
  const std::int64_t out_depth = three ? y_dims[2] : 1;
  const std::int64_t out_height = y_dims[three ? 3 : 2];
  const std::int64_t out_width = y_dims[three ? 4 : 3];
  const std::int64_t kd = three ? p.kernel_size[0] : 1;
  const std::int64_t kh = p.kernel_size[three ? 1 : 0];
  const std::int64_t kw = p.kernel_size.back();
  const std::int64_t sd = three ? p.stride[0] : 1;
  const std::int64_t sh = p.stride[three ? 1 : 0];
  const std::int64_t sw = p.stride.back();
  const std::int64_t pd = three ? p.padding[0] : 0;
  const std::int64_t ph = p.padding[three ? 1 : 0];
  const std::int64_t pw = p.padding.back();
  // Each tap's 16 channels side by side.
  std::vector<float> taps(static_cast<std::size_t>(kd * kh * kw * kChannels));
  for (std::int64_t c = 0; c < kChannels; ++c) {
    for (std::int64_t t = 0; t < kd * kh * kw; ++t) {
      taps[static_cast<std::size_t>(t * kChannels + c)] = weights[c * kd * kh * kw + t];
    }
  }
  // A padded row: pw zeros, the row, zeros to the last sample any output voxel reads.
  const std::int64_t padded = std::max(width + 2 * pw, (out_width - 1) * sw + kw) + 1;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> lines(static_cast<std::size_t>(kd * kh * padded), 0.0f);
    std::vector<const float*> rows(static_cast<std::size_t>(kd * kh));
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < batch * out_depth * out_height; ++item) {
      const std::int64_t n = item / (out_depth * out_height);
      const std::int64_t od = item / out_height % out_depth;
      const std::int64_t oh = item % out_height;
      for (std::int64_t a = 0; a < kd; ++a) {
        for (std::int64_t b = 0; b < kh; ++b) {
          const std::int64_t id = od * sd - pd + a;
          const std::int64_t ih = oh * sh - ph + b;
          const std::size_t k = static_cast<std::size_t>(a * kh + b);
          if (id < 0 || id >= depth || ih < 0 || ih >= height) {
            rows[k] = nullptr;
            continue;
          }
          float* line = lines.data() + static_cast<std::int64_t>(k) * padded;
          std::memcpy(line + pw, x + ((n * depth + id) * height + ih) * width,
                      static_cast<std::size_t>(width) * sizeof(float));
          rows[k] = line;
        }
      }
      const StemRow r{rows.data(), taps.data(), bias, kd * kh};
      const std::int64_t at = ((n * out_depth + od) * out_height + oh) * out_width * kChannels;
      const float* added = residual == nullptr ? nullptr : residual + at;
      if (sw == 1) {
        stem_row<1>(r, added, y + at, out_width);
      } else {
        stem_row<2>(r, added, y + at, out_width);
      }
    }
  }
}

}  // namespace cajal::engine::detail
