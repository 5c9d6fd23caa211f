#include "engine/layers/blocked_weight_gradient.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "engine/layers/common.h"

namespace cajal::engine::detail {
namespace {

constexpr std::int64_t kBlock = 8;  // channels a block
constexpr std::int64_t kTaps = 3;   // along W

__attribute__((target("avx2,fma"))) inline void add_to(double* a, __m256 v) {
  _mm256_storeu_pd(a,
                   _mm256_add_pd(_mm256_loadu_pd(a), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
  _mm256_storeu_pd(
      a + 4, _mm256_add_pd(_mm256_loadu_pd(a + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

// Adds to acc[c * c_stride + kw * 8 + ic], for the output channels c of the block, the sum over
// the output row of dy[ow][c] * x[ow + kw - pad][ic]: x and dy are rows of a blocked layout (8
// channels a voxel). x is first copied into `padded` with the zeros around it (width_out + 2
// voxels), so every output reads its three taps alike; then four output channels at a time, the
// row's sums in float (12 registers of 8 input channels), added to the doubles at its end.
__attribute__((target("avx2,fma"))) void row_sums(const float* x, const float* dy,
                                                  std::int64_t width_in, std::int64_t width_out,
                                                  std::int64_t pad, double* acc,
                                                  std::int64_t c_stride, float* padded) {
  for (std::int64_t j = 0; j < width_out + kTaps - 1; ++j) {
    const std::int64_t iw = j - pad;
    const __m256 v =
        iw >= 0 && iw < width_in ? _mm256_loadu_ps(x + iw * kBlock) : _mm256_setzero_ps();
    _mm256_storeu_ps(padded + j * kBlock, v);
  }
  for (std::int64_t oc0 = 0; oc0 < kBlock; oc0 += 4) {
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
    __m256 s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
    for (std::int64_t ow = 0; ow < width_out; ++ow) {
      const float* xs = padded + ow * kBlock;
      const __m256 x0 = _mm256_loadu_ps(xs);
      const __m256 x1 = _mm256_loadu_ps(xs + kBlock);
      const __m256 x2 = _mm256_loadu_ps(xs + 2 * kBlock);
      const float* d = dy + ow * kBlock + oc0;
      __m256 b = _mm256_broadcast_ss(d);
      s00 = _mm256_fmadd_ps(b, x0, s00);
      s01 = _mm256_fmadd_ps(b, x1, s01);
      s02 = _mm256_fmadd_ps(b, x2, s02);
      b = _mm256_broadcast_ss(d + 1);
      s10 = _mm256_fmadd_ps(b, x0, s10);
      s11 = _mm256_fmadd_ps(b, x1, s11);
      s12 = _mm256_fmadd_ps(b, x2, s12);
      b = _mm256_broadcast_ss(d + 2);
      s20 = _mm256_fmadd_ps(b, x0, s20);
      s21 = _mm256_fmadd_ps(b, x1, s21);
      s22 = _mm256_fmadd_ps(b, x2, s22);
      b = _mm256_broadcast_ss(d + 3);
      s30 = _mm256_fmadd_ps(b, x0, s30);
      s31 = _mm256_fmadd_ps(b, x1, s31);
      s32 = _mm256_fmadd_ps(b, x2, s32);
    }
    double* a = acc + oc0 * c_stride;
    add_to(a, s00);
    add_to(a + kBlock, s01);
    add_to(a + 2 * kBlock, s02);
    a += c_stride;
    add_to(a, s10);
    add_to(a + kBlock, s11);
    add_to(a + 2 * kBlock, s12);
    a += c_stride;
    add_to(a, s20);
    add_to(a + kBlock, s21);
    add_to(a + 2 * kBlock, s22);
    a += c_stride;
    add_to(a, s30);
    add_to(a + kBlock, s31);
    add_to(a + 2 * kBlock, s32);
  }
}

}  // namespace

bool fits_blocked_weight_gradient(std::int64_t in_channels, std::int64_t out_channels,
                                  std::int64_t groups, const std::array<std::int64_t, 3>& kernel,
                                  const std::array<std::int64_t, 3>& stride,
                                  const std::array<std::int64_t, 3>& dilation) {
  return avx2_fma_kernels() && groups == 1 && in_channels % kBlock == 0 &&
         out_channels % kBlock == 0 && kernel[2] == kTaps &&
         stride == std::array<std::int64_t, 3>{1, 1, 1} &&
         dilation == std::array<std::int64_t, 3>{1, 1, 1};
}

void blocked_weight_gradient(const BlockedWeightGradient& g, const float* x, const float* dy,
                             float* dw, float* db, int threads) {
  CAJAL_CHECK(g.in_channels % kBlock == 0 && g.out_channels % kBlock == 0 && g.kernel[2] == kTaps)
      << "blocked weight gradient of " << g.in_channels << " -> " << g.out_channels;
  const std::int64_t in_blocks = g.in_channels / kBlock;
  const std::int64_t out_blocks = g.out_channels / kBlock;
  const std::int64_t pairs = in_blocks * out_blocks;
  const auto [in_d, in_h, in_w] = g.in;
  const auto [out_d, out_h, out_w] = g.out;
  const std::int64_t kernel_rows = g.kernel[0] * g.kernel[1];
  // Each (output block, input block) pair's sums, split along the output's D into as many parts
  // as keep the threads busy (each part's sums apart, added in order at the end).
  const std::int64_t splits = std::clamp<std::int64_t>((2 * threads + pairs - 1) / pairs, 1, out_d);
  const std::int64_t c_stride = kernel_rows * kTaps * kBlock;  // doubles an output channel
  const std::int64_t item_doubles = kBlock * c_stride;
  std::vector<double> sums(static_cast<std::size_t>(pairs * splits * item_doubles), 0.0);
  const std::int64_t x_row = in_w * kBlock;
  const std::int64_t dy_row = out_w * kBlock;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> padded(static_cast<std::size_t>((out_w + kTaps - 1) * kBlock));
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < pairs * splits; ++item) {
      const std::int64_t pair = item / splits;
      const std::int64_t split = item % splits;
      const std::int64_t ob = pair / in_blocks;
      const std::int64_t ib = pair % in_blocks;
      double* acc = sums.data() + item * item_doubles;
      for (std::int64_t n = 0; n < g.batch; ++n) {
        const float* x_block = x + (n * in_blocks + ib) * in_d * in_h * x_row;
        const float* dy_block = dy + (n * out_blocks + ob) * out_d * out_h * dy_row;
        for (std::int64_t od = split * out_d / splits; od < (split + 1) * out_d / splits; ++od) {
          for (std::int64_t kd = 0; kd < g.kernel[0]; ++kd) {
            const std::int64_t id = od + kd - g.pad[0];
            if (id < 0 || id >= in_d) {
              continue;
            }
            for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
              double* tap_row = acc + (kd * g.kernel[1] + kh) * kTaps * kBlock;
              for (std::int64_t oh = 0; oh < out_h; ++oh) {
                const std::int64_t ih = oh + kh - g.pad[1];
                if (ih < 0 || ih >= in_h) {
                  continue;
                }
                const float* xs = x_block + (id * in_h + ih) * x_row;
                const float* ys = dy_block + (od * out_h + oh) * dy_row;
                row_sums(xs, ys, in_w, out_w, g.pad[2], tap_row, c_stride, padded.data());
              }
            }
          }
        }
      }
    }
  }
  const std::int64_t taps = kernel_rows * kTaps;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t pair = 0; pair < pairs; ++pair) {
    const std::int64_t ob = pair / in_blocks;
    const std::int64_t ib = pair % in_blocks;
    for (std::int64_t oc = 0; oc < kBlock; ++oc) {
      for (std::int64_t ic = 0; ic < kBlock; ++ic) {
        float* w = dw + ((ob * kBlock + oc) * g.in_channels + ib * kBlock + ic) * taps;
        for (std::int64_t tap = 0; tap < taps; ++tap) {
          double total = 0;
          for (std::int64_t split = 0; split < splits; ++split) {
            total += sums[static_cast<std::size_t>((pair * splits + split) * item_doubles +
                                                   oc * c_stride + tap * kBlock + ic)];
          }
          w[tap] += static_cast<float>(total);
        }
      }
    }
  }
  if (db == nullptr) {
    return;
  }
  const std::int64_t voxels = out_d * out_h * out_w;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t ob = 0; ob < out_blocks; ++ob) {
    std::array<double, kBlock> lanes{};
    for (std::int64_t n = 0; n < g.batch; ++n) {
      const float* ys = dy + (n * out_blocks + ob) * voxels * kBlock;
      for (std::int64_t v = 0; v < voxels; ++v) {
        for (std::int64_t c = 0; c < kBlock; ++c) {
          lanes[static_cast<std::size_t>(c)] += ys[v * kBlock + c];
        }
      }
    }
    for (std::int64_t c = 0; c < kBlock; ++c) {
      db[ob * kBlock + c] += static_cast<float>(lanes[static_cast<std::size_t>(c)]);
    }
  }
}

}  // namespace cajal::engine::detail
