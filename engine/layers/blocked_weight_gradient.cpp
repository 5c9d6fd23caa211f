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

// Four output channels' running sums: [channel][tap], 8 input channels each.
struct Sums {
  __m256 v[4][kTaps];
};

// One output column's products: dy's four output channels at `d` with the three taps' x.
__attribute__((target("avx2,fma"), always_inline)) inline void add_column(const float* d, __m256 x0,
                                                                          __m256 x1, __m256 x2,
                                                                          Sums& s) {
  for (int c = 0; c < 4; ++c) {
    const __m256 b = _mm256_broadcast_ss(d + c);
    s.v[c][0] = _mm256_fmadd_ps(b, x0, s.v[c][0]);
    s.v[c][1] = _mm256_fmadd_ps(b, x1, s.v[c][1]);
    s.v[c][2] = _mm256_fmadd_ps(b, x2, s.v[c][2]);
  }
}

// Tap k of output column ow: x at ow + k - pad, or zeros outside the row.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 tap(const float* x,
                                                                     std::int64_t at,
                                                                     std::int64_t width_in) {
  return at >= 0 && at < width_in ? _mm256_loadu_ps(x + at * kBlock) : _mm256_setzero_ps();
}

// Adds to acc[c * c_stride + kw * 8 + ic], for the output channels c of the block, the sum over
// the output row of dy[ow][c] * x[ow + kw - pad][ic]: x and dy are rows of a blocked layout (8
// channels a voxel). Four output channels at a time, the row's sums in float (12 registers of 8
// input channels), in the order of ow, added to the doubles at its end. The columns whose taps
// all lie inside the row read x straight; those at its ends read zeros for the taps outside.
__attribute__((target("avx2,fma"))) void row_sums(const float* x, const float* dy,
                                                  std::int64_t width_in, std::int64_t width_out,
                                                  std::int64_t pad, double* acc,
                                                  std::int64_t c_stride) {
  // [inside_begin, inside_end): the columns whose three taps are inside.
  const std::int64_t inside_begin = std::min(width_out, pad);
  const std::int64_t inside_end =
      std::max(inside_begin, std::min(width_out, width_in - kTaps + 1 + pad));
  for (std::int64_t oc0 = 0; oc0 < kBlock; oc0 += 4) {
    Sums s;
    for (auto& channel : s.v) {
      for (auto& sum : channel) {
        sum = _mm256_setzero_ps();
      }
    }
    const auto edge = [&](std::int64_t ow) __attribute__((target("avx2,fma"))) {
      add_column(dy + ow * kBlock + oc0, tap(x, ow - pad, width_in), tap(x, ow + 1 - pad, width_in),
                 tap(x, ow + 2 - pad, width_in), s);
    };
    for (std::int64_t ow = 0; ow < inside_begin; ++ow) {
      edge(ow);
    }
    for (std::int64_t ow = inside_begin; ow < inside_end; ++ow) {
      const float* xs = x + (ow - pad) * kBlock;
      add_column(dy + ow * kBlock + oc0, _mm256_loadu_ps(xs), _mm256_loadu_ps(xs + kBlock),
                 _mm256_loadu_ps(xs + 2 * kBlock), s);
    }
    for (std::int64_t ow = inside_end; ow < width_out; ++ow) {
      edge(ow);
    }
    for (int c = 0; c < 4; ++c) {
      double* a = acc + (oc0 + c) * c_stride;
      add_widened(a, s.v[c][0]);
      add_widened(a + kBlock, s.v[c][1]);
      add_widened(a + 2 * kBlock, s.v[c][2]);
    }
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
                row_sums(xs, ys, in_w, out_w, g.pad[2], tap_row, c_stride);
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
