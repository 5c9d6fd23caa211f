// The transposed convolution by hand (unpool.h). Built without multiply-add contraction (as
// common.cpp): the AVX-512F kernel's products are rounded before they are added, as the AVX2 and
// baseline clones' are, so every CPU gives the same bytes. The gradients on blocks of 16 channels
// (AVX-512F only) use fused multiply-adds by intrinsics.
#include "engine/layers/unpool.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/layers/common.h"

namespace cajal::engine::detail {
namespace {

using Float8 = float __attribute__((vector_size(32)));

// A transposed convolution whose kernel equals its stride (no padding, dilation or groups: a U-Net
// up-convolution) into few channels: each input voxel writes its own kernel-sized block,
// y[n, oc, i * k + a] = bias[oc] + sum_ic x[n, ic, i] * w[ic, oc, a] along each axis. oneDNN v2.6
// runs these on its gemm deconvolution, at 9-16 GFLOP/s here for the CT model's 16->8 and 32->16
// (at 25 GFLOP/s by hand); with more output channels its gemm does better than this loop.
// One input row (n, d, h) of x and the sizes the row kernels read: [IC, D, H, W] in, each voxel
// into a kd x kh x kW block of the output.
template <int kW>
struct UnpoolRow {
  std::int64_t ic_count, oc_count, depth, height, width, kd, kh, d, h;
  std::int64_t in_plane() const { return depth * height * width; }
  std::int64_t taps() const { return kd * kh * kW; }
  // The output of channel oc, tap row (a, e), from input column w0.
  float* out(float* image, std::int64_t oc, std::int64_t a, std::int64_t e, std::int64_t w0) const {
    return image + oc * in_plane() * kd * kh * kW +
           ((d * kd + a) * height * kh + h * kh + e) * width * kW + w0 * kW;
  }
  // Weight of input channel ic, output channel oc, tap (a, e, c).
  const float* weights(const float* w, std::int64_t ic, std::int64_t oc, std::int64_t a,
                       std::int64_t e) const {
    return w + (ic * oc_count + oc) * taps() + (a * kh + e) * kW;
  }
};

// The output rows that one input row (n, d, h) of x writes for output channels [oc0, oc0 + kOut):
// kd * kh rows per channel, 8 input columns at a time in registers, the input channels summed in
// order (any thread count gives the same bytes). Compiled for AVX2 and for the baseline, chosen
// at load time by the CPU; unpool_row_avx512 is its twin where the engine's AVX-512 kernels run.
template <int kW, int kOut>
__attribute__((target_clones("avx2", "default"))) void unpool_row(const float* line,
                                                                  const float* weights,
                                                                  const float* bias, float* out,
                                                                  std::int64_t oc0,
                                                                  const UnpoolRow<kW>& row) {
  const std::int64_t taps = row.taps();
  constexpr std::int64_t kChunk = 8;
  for (std::int64_t a = 0; a < row.kd; ++a) {
    for (std::int64_t e = 0; e < row.kh; ++e) {
      for (std::int64_t w0 = 0; w0 < row.width; w0 += kChunk) {
        const std::int64_t columns = std::min(kChunk, row.width - w0);
        Float8 acc[kOut][kW];
        for (int o = 0; o < kOut; ++o) {
          for (int c = 0; c < kW; ++c) {
            acc[o][c] = Float8{} + (bias == nullptr ? 0.0f : bias[oc0 + o]);
          }
        }
        for (std::int64_t ic = 0; ic < row.ic_count; ++ic) {
          const float* src = line + ic * row.in_plane() + w0;
          Float8 x;
          if (columns == kChunk) {
            std::memcpy(&x, src, sizeof x);
          } else {
            float column[kChunk] = {};
            std::copy(src, src + columns, column);
            std::memcpy(&x, column, sizeof x);
          }
          const float* w = row.weights(weights, ic, oc0, a, e);
          for (int o = 0; o < kOut; ++o) {
            for (int c = 0; c < kW; ++c) {
              acc[o][c] += w[o * taps + c] * x;
            }
          }
        }
        for (int o = 0; o < kOut; ++o) {
          float* dst = row.out(out, oc0 + o, a, e, w0);
          float sums[kW][kChunk];
          std::memcpy(sums, acc[o], sizeof sums);
          for (std::int64_t i = 0; i < columns; ++i) {
            for (int c = 0; c < kW; ++c) {
              dst[i * kW + c] = sums[c][i];
            }
          }
        }
      }
    }
  }
}

// unpool_row with AVX-512F: 16 input columns at a time, the tail under a mask; for a 2-wide kernel
// along W the two taps' sums interleaved into 32 output values by two permutes (unpool_row
// stores them value by value). The same products and sums in the same order.
template <int kW, int kOut>
__attribute__((target("avx512f"))) void unpool_row_avx512(const float* line, const float* weights,
                                                          const float* bias, float* out,
                                                          std::int64_t oc0,
                                                          const UnpoolRow<kW>& row) {
  const std::int64_t taps = row.taps();
  constexpr std::int64_t kChunk = 16;
  for (std::int64_t a = 0; a < row.kd; ++a) {
    for (std::int64_t e = 0; e < row.kh; ++e) {
      for (std::int64_t w0 = 0; w0 < row.width; w0 += kChunk) {
        const std::int64_t columns = std::min(kChunk, row.width - w0);
        const auto mask = static_cast<__mmask16>((1u << columns) - 1u);
        __m512 acc[kOut][kW];
#pragma GCC unroll 8
        for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 4
          for (int c = 0; c < kW; ++c) {
            acc[o][c] = _mm512_set1_ps(bias == nullptr ? 0.0f : bias[oc0 + o]);
          }
        }
        for (std::int64_t ic = 0; ic < row.ic_count; ++ic) {
          const __m512 x = _mm512_maskz_loadu_ps(mask, line + ic * row.in_plane() + w0);
          const float* w = row.weights(weights, ic, oc0, a, e);
#pragma GCC unroll 8
          for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 4
            for (int c = 0; c < kW; ++c) {
              acc[o][c] =
                  _mm512_add_ps(acc[o][c], _mm512_mul_ps(_mm512_set1_ps(w[o * taps + c]), x));
            }
          }
        }
        for (int o = 0; o < kOut; ++o) {
          float* dst = row.out(out, oc0 + o, a, e, w0);
          if constexpr (kW == 1) {
            _mm512_mask_storeu_ps(dst, mask, acc[o][0]);
          } else if constexpr (kW == 2) {
            store_interleaved(dst, acc[o][0], acc[o][1], columns);
          } else {
            float sums[kW][kChunk];
#pragma GCC unroll 4
            for (int c = 0; c < kW; ++c) {
              _mm512_storeu_ps(sums[c], acc[o][c]);
            }
            for (std::int64_t i = 0; i < columns; ++i) {
              for (int c = 0; c < kW; ++c) {
                dst[i * kW + c] = sums[c][i];
              }
            }
          }
        }
      }
    }
  }
}

template <int kW>
void unpool_rows(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                 std::int64_t kd, std::int64_t kh, int threads) {
  const auto spatial = static_cast<int>(x.dims().size()) - 2;
  const std::int64_t batch = x.dim(0);
  const std::int64_t ic_count = x.dim(1);
  const std::int64_t oc_count = y.dim(1);
  const std::int64_t depth = spatial == 3 ? x.dim(2) : 1;  // 2D: depth 1
  const std::int64_t height = x.dim(spatial);
  const std::int64_t width = x.dim(spatial + 1);
  const std::int64_t in_plane = depth * height * width;
  const std::int64_t out_image = oc_count * in_plane * kd * kh * kW;
  constexpr int kBlock = 8;  // output channels per pass over an input row
  const bool avx512 = avx512_kernels();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t row = 0; row < batch * depth * height; ++row) {
    const std::int64_t n = row / (depth * height);
    const UnpoolRow<kW> shape{
        ic_count, oc_count, depth, height, width, kd, kh, (row / height) % depth, row % height};
    const float* line = x.data() + n * ic_count * in_plane + row % (depth * height) * width;
    float* out = y.data() + n * out_image;
    std::int64_t oc = 0;
    for (; oc + kBlock <= oc_count; oc += kBlock) {
      if (avx512) {
        unpool_row_avx512<kW, kBlock>(line, weights, bias, out, oc, shape);
      } else {
        unpool_row<kW, kBlock>(line, weights, bias, out, oc, shape);
      }
    }
    for (; oc < oc_count; ++oc) {
      if (avx512) {
        unpool_row_avx512<kW, 1>(line, weights, bias, out, oc, shape);
      } else {
        unpool_row<kW, 1>(line, weights, bias, out, oc, shape);
      }
    }
  }
}

// The sizes the blocked kernels read: x [N, IC, D, H, W] (2D: D 1), kernel (kd, kh, kw), and the
// output (or its gradient) [N, OB, D kd, H kh, W kw, 16].
struct UnpoolShape {
  std::int64_t batch, ic_count, out_blocks, depth, height, width, kd, kh, kw;
  std::vector<std::int64_t> offsets;  // each tap's tap_offset
  std::int64_t taps() const { return kd * kh * kw; }
  std::int64_t in_plane() const { return depth * height * width; }
  // diff_dst's 16 values of block ob at tap 0 of input voxel (n, d, h, 0); voxel w's at tap t
  // lie tap_offset(t) + w * kw * 16 further.
  std::int64_t row_at(std::int64_t n, std::int64_t ob, std::int64_t d, std::int64_t h) const {
    return ((n * out_blocks + ob) * in_plane() * taps() +
            (d * kd * height * kh + h * kh) * width * kw) *
           16;
  }
  std::int64_t tap_offset(std::int64_t tap) const {
    const std::int64_t a = tap / (kh * kw);
    const std::int64_t e = tap / kw % kh;
    const std::int64_t c = tap % kw;
    return ((a * height * kh + e) * width * kw + c) * 16;
  }
};

UnpoolShape unpool_shape(const Dims& in, std::int64_t out_channels, const Dims& kernel) {
  const auto spatial = in.size() - 2;
  UnpoolShape s{.batch = in[0],
                .ic_count = in[1],
                .out_blocks = out_channels / 16,
                .depth = spatial == 3 ? in[2] : 1,
                .height = in[spatial],
                .width = in[spatial + 1],
                .kd = spatial == 3 ? kernel[0] : 1,
                .kh = kernel[spatial - 2],
                .kw = kernel[spatial - 1],
                .offsets = {}};
  for (std::int64_t t = 0; t < s.taps(); ++t) {
    s.offsets.push_back(s.tap_offset(t));
  }
  return s;
}

// Input voxels [w0, w0 + kVoxels) of one input row (its channels at `line`), taps
// [t0, t0 + kTaps): the kVoxels x kTaps sums of 16 output channels in registers, each started at
// the bias and the products x * w added in input channel order (as unpool_row_avx512 adds them),
// stored from `out_row` (UnpoolShape::row_at). `packed` [IC, taps, 16] the weights of the block's
// 16 output channels.
template <int kVoxels, int kTaps>
__attribute__((target("avx512f"))) void unpool_blocked_voxels(const float* line,
                                                              const float* packed,
                                                              const float* bias16, float* out_row,
                                                              std::int64_t w0, std::int64_t t0,
                                                              const UnpoolShape& s) {
  const std::int64_t taps = s.taps();
  const __m512 start = bias16 == nullptr ? _mm512_setzero_ps() : _mm512_loadu_ps(bias16);
  __m512 acc[kVoxels][kTaps];
#pragma GCC unroll 4
  for (int v = 0; v < kVoxels; ++v) {
#pragma GCC unroll 8
    for (int t = 0; t < kTaps; ++t) {
      acc[v][t] = start;
    }
  }
  for (std::int64_t ic = 0; ic < s.ic_count; ++ic) {
    __m512 x[kVoxels];
#pragma GCC unroll 4
    for (int v = 0; v < kVoxels; ++v) {
      x[v] = _mm512_set1_ps(line[ic * s.in_plane() + w0 + v]);
    }
    const float* w = packed + (ic * taps + t0) * 16;
#pragma GCC unroll 8
    for (int t = 0; t < kTaps; ++t) {
      const __m512 wt = _mm512_loadu_ps(w + t * 16);
#pragma GCC unroll 4
      for (int v = 0; v < kVoxels; ++v) {
        acc[v][t] = _mm512_add_ps(acc[v][t], _mm512_mul_ps(wt, x[v]));
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < kTaps; ++t) {
    float* const tap = out_row + s.offsets[static_cast<std::size_t>(t0 + t)];
#pragma GCC unroll 4
    for (int v = 0; v < kVoxels; ++v) {
      _mm512_storeu_ps(tap + (w0 + v) * s.kw * 16, acc[v][t]);
    }
  }
}

template <int kVoxels>
void unpool_blocked_taps(const float* line, const float* packed, const float* bias16,
                         float* out_row, std::int64_t w0, const UnpoolShape& s) {
  constexpr std::int64_t kGroup = 8;
  const std::int64_t taps = s.taps();
  std::int64_t t0 = 0;
  for (; t0 + kGroup <= taps; t0 += kGroup) {
    unpool_blocked_voxels<kVoxels, kGroup>(line, packed, bias16, out_row, w0, t0, s);
  }
  switch (taps - t0) {
    case 0:
      return;
    case 1:
      return unpool_blocked_voxels<kVoxels, 1>(line, packed, bias16, out_row, w0, t0, s);
    case 2:
      return unpool_blocked_voxels<kVoxels, 2>(line, packed, bias16, out_row, w0, t0, s);
    case 3:
      return unpool_blocked_voxels<kVoxels, 3>(line, packed, bias16, out_row, w0, t0, s);
    case 4:
      return unpool_blocked_voxels<kVoxels, 4>(line, packed, bias16, out_row, w0, t0, s);
    case 5:
      return unpool_blocked_voxels<kVoxels, 5>(line, packed, bias16, out_row, w0, t0, s);
    case 6:
      return unpool_blocked_voxels<kVoxels, 6>(line, packed, bias16, out_row, w0, t0, s);
    default:
      return unpool_blocked_voxels<kVoxels, 7>(line, packed, bias16, out_row, w0, t0, s);
  }
}

// diff_src of input voxels [w0, w0 + kVoxels) of row (n, d, h), channels [ic0, ic0 + 16 kIcb),
// into tile[v * tile_stride + ic - ic0]: each of diff_dst's values (by block, tap and lane)
// broadcast times the channels' row of `packed` [OB, taps, 16, ICpad].
template <int kVoxels, int kIcb>
__attribute__((target("avx512f"))) void unpool_data_voxels(const float* diff_dst,
                                                           const float* packed, std::int64_t ic_pad,
                                                           float* tile, std::int64_t tile_stride,
                                                           std::int64_t n, std::int64_t d,
                                                           std::int64_t h, std::int64_t w0,
                                                           std::int64_t ic0, const UnpoolShape& s) {
  __m512 acc[kVoxels][kIcb];
#pragma GCC unroll 8
  for (int v = 0; v < kVoxels; ++v) {
#pragma GCC unroll 8
    for (int b = 0; b < kIcb; ++b) {
      acc[v][b] = _mm512_setzero_ps();
    }
  }
  const std::int64_t taps = s.taps();
  for (std::int64_t ob = 0; ob < s.out_blocks; ++ob) {
    const float* row = diff_dst + s.row_at(n, ob, d, h) + w0 * s.kw * 16;
    for (std::int64_t t = 0; t < taps; ++t) {
      const float* dy[kVoxels];
#pragma GCC unroll 8
      for (int v = 0; v < kVoxels; ++v) {
        dy[v] = row + s.offsets[static_cast<std::size_t>(t)] + v * s.kw * 16;
      }
      const float* w = packed + (ob * taps + t) * 16 * ic_pad + ic0;
      for (int l = 0; l < 16; ++l) {
        __m512 wl[kIcb];
#pragma GCC unroll 8
        for (int b = 0; b < kIcb; ++b) {
          wl[b] = _mm512_loadu_ps(w + l * ic_pad + b * 16);
        }
#pragma GCC unroll 8
        for (int v = 0; v < kVoxels; ++v) {
          const __m512 g = _mm512_set1_ps(dy[v][l]);
#pragma GCC unroll 8
          for (int b = 0; b < kIcb; ++b) {
            acc[v][b] = _mm512_fmadd_ps(g, wl[b], acc[v][b]);
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < kVoxels; ++v) {
#pragma GCC unroll 8
    for (int b = 0; b < kIcb; ++b) {
      _mm512_storeu_ps(tile + v * tile_stride + b * 16, acc[v][b]);
    }
  }
}

// One row (n, d, h) of diff_src, 16 voxels at a time: kIcb blocks of 16 channels for kVoxels
// voxels in registers into a tile, then the tile written out channel by channel.
template <int kIcb, int kVoxels>
void unpool_data_row(const float* diff_dst, const float* packed, std::int64_t ic_pad,
                     float* row_out, std::int64_t n, std::int64_t d, std::int64_t h,
                     const UnpoolShape& s) {
  constexpr std::int64_t kTile = 16;
  constexpr std::int64_t kStride = 16 * kIcb;
  alignas(64) float tile[kTile * kStride];
  for (std::int64_t w0 = 0; w0 < s.width; w0 += kTile) {
    const std::int64_t voxels = std::min(kTile, s.width - w0);
    for (std::int64_t ic0 = 0; ic0 < s.ic_count; ic0 += kStride) {
      std::int64_t v = 0;
      for (; v + kVoxels <= voxels; v += kVoxels) {
        unpool_data_voxels<kVoxels, kIcb>(diff_dst, packed, ic_pad, tile + v * kStride, kStride, n,
                                          d, h, w0 + v, ic0, s);
      }
      for (; v < voxels; ++v) {
        unpool_data_voxels<1, kIcb>(diff_dst, packed, ic_pad, tile + v * kStride, kStride, n, d, h,
                                    w0 + v, ic0, s);
      }
      const std::int64_t channels = std::min(kStride, s.ic_count - ic0);
      for (std::int64_t c = 0; c < channels; ++c) {
        float* out = row_out + (ic0 + c) * s.in_plane() + w0;
        for (std::int64_t u = 0; u < voxels; ++u) {
          out[u] = tile[u * kStride + c];
        }
      }
    }
  }
}

// Input channels [ic0, ic0 + kIc), taps [t0, t0 + kTaps) of block ob, over the rows of plane
// (n, d): sums[(i * kTaps + t) * 16 + l] += x[ic0 + i] * diff_dst voxel by voxel.
template <int kIc, int kTaps>
__attribute__((target("avx512f"))) void unpool_weight_plane(const float* plane,
                                                            const float* diff_dst, float* sums,
                                                            std::int64_t n, std::int64_t ob,
                                                            std::int64_t d, std::int64_t ic0,
                                                            std::int64_t t0, const UnpoolShape& s) {
  __m512 acc[kIc][kTaps];
#pragma GCC unroll 4
  for (int i = 0; i < kIc; ++i) {
#pragma GCC unroll 8
    for (int t = 0; t < kTaps; ++t) {
      acc[i][t] = _mm512_loadu_ps(sums + (i * kTaps + t) * 16);
    }
  }
  const std::int64_t step = s.kw * 16;
  for (std::int64_t h = 0; h < s.height; ++h) {
    const float* dy[kTaps];
#pragma GCC unroll 8
    for (int t = 0; t < kTaps; ++t) {
      dy[t] = diff_dst + s.row_at(n, ob, d, h) + s.offsets[static_cast<std::size_t>(t0 + t)];
    }
    const float* xs[kIc];
#pragma GCC unroll 4
    for (int i = 0; i < kIc; ++i) {
      xs[i] = plane + (ic0 + i) * s.in_plane() + h * s.width;
    }
    for (std::int64_t w = 0; w < s.width; ++w) {
      __m512 x[kIc];
#pragma GCC unroll 4
      for (int i = 0; i < kIc; ++i) {
        x[i] = _mm512_set1_ps(xs[i][w]);
      }
#pragma GCC unroll 8
      for (int t = 0; t < kTaps; ++t) {
        const __m512 g = _mm512_loadu_ps(dy[t] + w * step);
#pragma GCC unroll 4
        for (int i = 0; i < kIc; ++i) {
          acc[i][t] = _mm512_fmadd_ps(x[i], g, acc[i][t]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kIc; ++i) {
#pragma GCC unroll 8
    for (int t = 0; t < kTaps; ++t) {
      _mm512_storeu_ps(sums + (i * kTaps + t) * 16, acc[i][t]);
    }
  }
}

// unpool_weight_plane for 1 to 4 input channels and 1 to 4 taps: [channels - 1][taps - 1].
using WeightPlane = void (*)(const float*, const float*, float*, std::int64_t, std::int64_t,
                             std::int64_t, std::int64_t, std::int64_t, const UnpoolShape&);
template <int kIc>
constexpr std::array<WeightPlane, 4> kWeightPlanesOf{
    &unpool_weight_plane<kIc, 1>, &unpool_weight_plane<kIc, 2>, &unpool_weight_plane<kIc, 3>,
    &unpool_weight_plane<kIc, 4>};
constexpr std::array<std::array<WeightPlane, 4>, 4> kWeightPlanes{
    kWeightPlanesOf<1>, kWeightPlanesOf<2>, kWeightPlanesOf<3>, kWeightPlanesOf<4>};

// Block ob over the rows of plane (n, d): sums[l] += diff_dst, by input voxel, then tap.
__attribute__((target("avx512f"))) void unpool_bias_plane(const float* diff_dst, float* sums,
                                                          std::int64_t n, std::int64_t ob,
                                                          std::int64_t d, const UnpoolShape& s) {
  __m512 acc = _mm512_loadu_ps(sums);
  for (std::int64_t h = 0; h < s.height; ++h) {
    const float* row = diff_dst + s.row_at(n, ob, d, h);
    for (std::int64_t w = 0; w < s.width; ++w) {
      for (std::int64_t t = 0; t < s.taps(); ++t) {
        acc = _mm512_add_ps(
            acc, _mm512_loadu_ps(row + s.offsets[static_cast<std::size_t>(t)] + w * s.kw * 16));
      }
    }
  }
  _mm512_storeu_ps(sums, acc);
}

}  // namespace

void unpool_backward_blocked(const Tensor& x, const float* diff_dst, const float* weights,
                             Tensor* diff_src, float* weight_grad, float* bias_grad,
                             std::int64_t out_channels, const Dims& kernel, int threads) {
  const UnpoolShape s = unpool_shape(x.dims(), out_channels, kernel);
  const std::int64_t taps = s.taps();
  const std::int64_t planes = s.batch * s.depth;
  // The data pass: kIcb blocks of 16 input channels at a time, as many as there are up to 4 (by 8
  // the weights are read faster than the cache gives them: 128 -> 64 at 8^3 0.54 ms, by 4 0.26).
  const std::int64_t blocks = (s.ic_count + 15) / 16;
  const std::int64_t at_once = blocks >= 4 ? 4 : blocks >= 2 ? 2 : 1;
  // [OB, taps, 16, ICpad] from PyTorch's [IC, OC, taps]; ICpad a multiple of 16 kIcb, zeros past
  // IC.
  const std::int64_t ic_pad = (blocks + at_once - 1) / at_once * at_once * 16;
  std::vector<float> packed;
  if (diff_src != nullptr) {
    packed.assign(static_cast<std::size_t>(out_channels * taps * ic_pad), 0.0f);
    for (std::int64_t ob = 0; ob < s.out_blocks; ++ob) {
      for (std::int64_t t = 0; t < taps; ++t) {
        for (std::int64_t l = 0; l < 16; ++l) {
          float* row = packed.data() + ((ob * taps + t) * 16 + l) * ic_pad;
          for (std::int64_t ic = 0; ic < s.ic_count; ++ic) {
            row[ic] = weights[(ic * out_channels + ob * 16 + l) * taps + t];
          }
        }
      }
    }
  }
  // The weight pass's items: groups of 4 input channels (the last of 1 to 4), then the bias's
  // sums; each summed over every plane (n, d) in order by one thread. 4 channels times 4 taps: 16
  // sums in registers, 4 loads of diff_dst and 4 broadcasts of x for 16 multiply-adds.
  constexpr std::int64_t kChannels = 4;
  constexpr std::int64_t kTaps = 4;
  const std::int64_t groups = (s.ic_count + kChannels - 1) / kChannels;
  const std::int64_t items = groups + (bias_grad != nullptr ? 1 : 0);
  const auto channels_of = [&](std::int64_t item) {
    return std::min(kChannels, s.ic_count - item * kChannels);
  };
  // Plane by plane, each thread its rows of diff_src and then its items' sums, so that the plane
  // of diff_dst that the data pass brought into the caches is read from there by the weight pass.
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t team = omp_get_num_threads();
    const std::int64_t me = omp_get_thread_num();
    std::vector<std::int64_t> mine;
    for (std::int64_t item = me; item < items; item += team) {
      mine.push_back(item);
    }
    // Per item: [ob][group of kTaps taps][channels x (taps in the group)][16] sums.
    std::vector<std::vector<float>> sums;
    for (const std::int64_t item : mine) {
      sums.emplace_back(
          static_cast<std::size_t>(item == groups ? out_channels
                                                  : channels_of(item) * out_channels * taps),
          0.0f);
    }
    for (std::int64_t p = 0; p < planes; ++p) {
      const std::int64_t n = p / s.depth;
      const std::int64_t d = p % s.depth;
      for (std::int64_t h = me; diff_src != nullptr && h < s.height; h += team) {
        float* row_out =
            diff_src->data() + n * s.ic_count * s.in_plane() + (d * s.height + h) * s.width;
        if (at_once == 4) {
          unpool_data_row<4, 4>(diff_dst, packed.data(), ic_pad, row_out, n, d, h, s);
        } else if (at_once == 2) {
          unpool_data_row<2, 4>(diff_dst, packed.data(), ic_pad, row_out, n, d, h, s);
        } else {
          unpool_data_row<1, 8>(diff_dst, packed.data(), ic_pad, row_out, n, d, h, s);
        }
      }
      const float* plane = x.data() + n * s.ic_count * s.in_plane() + d * s.height * s.width;
      for (std::size_t k = 0; k < mine.size(); ++k) {
        const std::int64_t item = mine[k];
        for (std::int64_t ob = 0; ob < s.out_blocks; ++ob) {
          if (item == groups) {
            unpool_bias_plane(diff_dst, sums[k].data() + ob * 16, n, ob, d, s);
            continue;
          }
          const std::int64_t channels = channels_of(item);
          for (std::int64_t t0 = 0; t0 < taps; t0 += kTaps) {
            const std::int64_t count = std::min(kTaps, taps - t0);
            kWeightPlanes[static_cast<std::size_t>(channels - 1)][static_cast<std::size_t>(
                count - 1)](plane, diff_dst, sums[k].data() + (ob * taps + t0) * 16 * channels, n,
                            ob, d, item * kChannels, t0, s);
          }
        }
      }
    }
    for (std::size_t k = 0; k < mine.size(); ++k) {
      const std::int64_t item = mine[k];
      if (item == groups) {
        for (std::int64_t oc = 0; oc < out_channels; ++oc) {
          bias_grad[oc] += sums[k][static_cast<std::size_t>(oc)];
        }
        continue;
      }
      const std::int64_t channels = channels_of(item);
      for (std::int64_t ob = 0; ob < s.out_blocks; ++ob) {
        for (std::int64_t t0 = 0; t0 < taps; t0 += kTaps) {
          const std::int64_t count = std::min(kTaps, taps - t0);
          const float* part = sums[k].data() + (ob * taps + t0) * 16 * channels;
          for (std::int64_t i = 0; i < channels; ++i) {
            for (std::int64_t t = 0; t < count; ++t) {
              for (std::int64_t l = 0; l < 16; ++l) {
                weight_grad[((item * kChannels + i) * out_channels + ob * 16 + l) * taps + t0 +
                            t] += part[(i * count + t) * 16 + l];
              }
            }
          }
        }
      }
    }
  }
}

void unpool_convolution_blocked(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                                const Dims& kernel, int threads) {
  const UnpoolShape s = unpool_shape(x.dims(), y.dim(1), kernel);
  const std::int64_t taps = s.taps();
  // [OC / 16, IC, taps, 16] from PyTorch's [IC, OC, taps].
  std::vector<float> packed(static_cast<std::size_t>(s.out_blocks * s.ic_count * taps * 16));
  for (std::int64_t ob = 0; ob < s.out_blocks; ++ob) {
    for (std::int64_t ic = 0; ic < s.ic_count; ++ic) {
      for (std::int64_t t = 0; t < taps; ++t) {
        for (std::int64_t l = 0; l < 16; ++l) {
          packed[static_cast<std::size_t>(((ob * s.ic_count + ic) * taps + t) * 16 + l)] =
              weights[(ic * s.out_blocks * 16 + ob * 16 + l) * taps + t];
        }
      }
    }
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t r = 0; r < s.batch * s.out_blocks * s.depth * s.height; ++r) {
    const std::int64_t n = r / (s.out_blocks * s.depth * s.height);
    const std::int64_t ob = r / (s.depth * s.height) % s.out_blocks;
    const std::int64_t d = r / s.height % s.depth;
    const std::int64_t h = r % s.height;
    const float* line = x.data() + n * s.ic_count * s.in_plane() + (d * s.height + h) * s.width;
    const float* w = packed.data() + ob * s.ic_count * taps * 16;
    const float* bias16 = bias == nullptr ? nullptr : bias + ob * 16;
    float* out_row = y.data() + s.row_at(n, ob, d, h);
    std::int64_t w0 = 0;
    for (; w0 + 2 <= s.width; w0 += 2) {
      unpool_blocked_taps<2>(line, w, bias16, out_row, w0, s);
    }
    if (w0 < s.width) {
      unpool_blocked_taps<1>(line, w, bias16, out_row, w0, s);
    }
  }
}

void unpool_convolution(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                        const Dims& kernel, int threads) {
  const auto rank = kernel.size();
  const std::int64_t kd = rank == 3 ? kernel[0] : 1;
  const std::int64_t kh = kernel[rank - 2];
  switch (kernel.back()) {
    case 1:
      return unpool_rows<1>(x, weights, bias, y, kd, kh, threads);
    case 2:
      return unpool_rows<2>(x, weights, bias, y, kd, kh, threads);
    case 3:
      return unpool_rows<3>(x, weights, bias, y, kd, kh, threads);
    default:
      return unpool_rows<4>(x, weights, bias, y, kd, kh, threads);
  }
}

}  // namespace cajal::engine::detail
