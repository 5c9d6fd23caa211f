// The doubling transposed convolution by hand (doubling.h).
#include "engine/layers/doubling.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "engine/layers/common.h"

namespace cajal::engine::detail {
namespace {

// Along one axis, output sample 2m + a reads input sample m + offset with kernel tap `tap`: one
// tap when a = 0, two when a = 1.
struct Tap {
  int offset;
  int tap;
};
constexpr Tap kTaps[2][2] = {{{0, 1}, {0, 0}}, {{0, 2}, {1, 0}}};
constexpr int kTapCount[2] = {1, 2};

// One input row (n, d, h) of x and where its output rows go. An input row past the end (d + 1 or
// h + 1) reads zeros: `rows` points at a zero row and `steps` (floats from one input channel to
// the next) is 0.
struct DoublingRow {
  const float* rows[2][2];  // [d offset][h offset], at input channel 0, column 0
  std::int64_t steps[2][2];
  std::int64_t ic_count, oc_count, width;
  float* out;              // y at (n, 0, 2d, 2h, 0)
  std::int64_t out_plane;  // floats from one output channel to the next
  std::int64_t out_row;    // 2W
  std::int64_t out_slice;  // 2H * 2W (3D: from output plane 2d to 2d + 1)
};

// Output channels [oc0, oc0 + kOut) of the output rows of one input row: 2 x 2 (3D: 2 x 2 x 2)
// phases an output channel, 16 input columns at a time, the tail under a mask. The two phases
// along W are interleaved by two permutes into 32 output values.
template <int kPhasesD, int kOut>
__attribute__((target("avx512f"))) void doubling_row(const DoublingRow& r, const float* weights,
                                                     const float* bias, std::int64_t oc0) {
  constexpr bool kThree = kPhasesD == 2;
  constexpr int kTapsPerChannel = kThree ? 27 : 9;
  constexpr std::int64_t kChunk = 16;
  for (std::int64_t w0 = 0; w0 < r.width; w0 += kChunk) {
    const std::int64_t columns = std::min(kChunk, r.width - w0);
    const std::int64_t shifted = std::min(kChunk, r.width - w0 - 1);  // columns of w0 + 1
    const auto mask = static_cast<__mmask16>(columns == kChunk ? 0xffffu : (1u << columns) - 1u);
    const auto mask1 = static_cast<__mmask16>(shifted == kChunk ? 0xffffu : (1u << shifted) - 1u);
    __m512 acc[kPhasesD][2][2][kOut];
#pragma GCC unroll 2
    for (int a = 0; a < kPhasesD; ++a) {
#pragma GCC unroll 2
      for (int b = 0; b < 2; ++b) {
#pragma GCC unroll 2
        for (int c = 0; c < 2; ++c) {
#pragma GCC unroll 2
          for (int o = 0; o < kOut; ++o) {
            acc[a][b][c][o] = _mm512_set1_ps(bias == nullptr ? 0.0f : bias[oc0 + o]);
          }
        }
      }
    }
    for (std::int64_t ic = 0; ic < r.ic_count; ++ic) {
      __m512 v[kPhasesD][2][2];  // [d offset][h offset][w offset]
#pragma GCC unroll 2
      for (int dd = 0; dd < kPhasesD; ++dd) {
#pragma GCC unroll 2
        for (int hh = 0; hh < 2; ++hh) {
          const float* row = r.rows[dd][hh] + ic * r.steps[dd][hh] + w0;
          v[dd][hh][0] = _mm512_maskz_loadu_ps(mask, row);
          v[dd][hh][1] = _mm512_maskz_loadu_ps(mask1, row + 1);
        }
        // The next input row's 16 columns, for the next row on this thread (h + 1, whose rows
        // h + 1 are these rows h + 1, in cache; rows of other planes and channels the hardware
        // prefetcher does not foresee).
        _mm_prefetch(
            reinterpret_cast<const char*>(r.rows[dd][1] + ic * r.steps[dd][1] + w0 + r.width),
            _MM_HINT_T0);
      }
      const float* w = weights + (ic * r.oc_count + oc0) * kTapsPerChannel;
#pragma GCC unroll 2
      for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 2
        for (int a = 0; a < kPhasesD; ++a) {
#pragma GCC unroll 2
          for (int b = 0; b < 2; ++b) {
#pragma GCC unroll 2
            for (int c = 0; c < 2; ++c) {
#pragma GCC unroll 2
              for (int td = 0; td < (kThree ? kTapCount[a] : 1); ++td) {
#pragma GCC unroll 2
                for (int th = 0; th < kTapCount[b]; ++th) {
#pragma GCC unroll 2
                  for (int tc = 0; tc < kTapCount[c]; ++tc) {
                    const Tap& d = kTaps[a][td];
                    const Tap& h = kTaps[b][th];
                    const Tap& e = kTaps[c][tc];
                    const int tap = (kThree ? d.tap * 9 : 0) + h.tap * 3 + e.tap;
                    acc[a][b][c][o] = _mm512_fmadd_ps(v[kThree ? d.offset : 0][h.offset][e.offset],
                                                      _mm512_set1_ps(w[o * kTapsPerChannel + tap]),
                                                      acc[a][b][c][o]);
                  }
                }
              }
            }
          }
        }
      }
    }
    for (int o = 0; o < kOut; ++o) {
      for (int a = 0; a < kPhasesD; ++a) {
        for (int b = 0; b < 2; ++b) {
          float* dst = r.out + (oc0 + o) * r.out_plane + a * r.out_slice + b * r.out_row + 2 * w0;
          store_interleaved(dst, acc[a][b][0][o], acc[a][b][1][o], columns);
        }
      }
    }
  }
}

template <int kPhasesD>
void doubling_rows(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                   int threads) {
  constexpr bool kThree = kPhasesD == 2;
  const std::int64_t batch = x.dim(0);
  const std::int64_t ic_count = x.dim(1);
  const std::int64_t oc_count = y.dim(1);
  const std::int64_t depth = kThree ? x.dim(2) : 1;
  const std::int64_t height = x.dim(kThree ? 3 : 2);
  const std::int64_t width = x.dim(kThree ? 4 : 3);
  const std::int64_t in_plane = depth * height * width;
  const std::int64_t out_row = 2 * width;
  const std::int64_t out_slice = 2 * height * out_row;
  const std::int64_t out_plane = (kThree ? 2 * depth : 1) * out_slice;
  const std::vector<float> zeros(static_cast<std::size_t>(width + 1), 0.0f);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t item = 0; item < batch * depth * height; ++item) {
    const std::int64_t n = item / (depth * height);
    const std::int64_t d = item / height % depth;
    const std::int64_t h = item % height;
    DoublingRow r{};
    for (int dd = 0; dd < kPhasesD; ++dd) {
      for (int hh = 0; hh < 2; ++hh) {
        const bool inside = d + dd < depth && h + hh < height;
        r.rows[dd][hh] =
            inside ? x.data() + n * ic_count * in_plane + ((d + dd) * height + h + hh) * width
                   : zeros.data();
        r.steps[dd][hh] = inside ? in_plane : 0;
      }
    }
    r.ic_count = ic_count;
    r.oc_count = oc_count;
    r.width = width;
    r.out =
        y.data() + n * oc_count * out_plane + (kThree ? 2 * d * out_slice : 0) + 2 * h * out_row;
    r.out_plane = out_plane;
    r.out_row = out_row;
    r.out_slice = out_slice;
    std::int64_t oc = 0;
    for (; oc + 2 <= oc_count; oc += 2) {
      doubling_row<kPhasesD, 2>(r, weights, bias, oc);
    }
    if (oc < oc_count) {
      doubling_row<kPhasesD, 1>(r, weights, bias, oc);
    }
  }
}

}  // namespace

void doubling_convolution(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                          int threads) {
  const std::size_t rank = x.dims().size();
  CAJAL_CHECK((rank == 4 || rank == 5) && y.dims().size() == rank && y.dim(0) == x.dim(0) &&
              y.dim(1) <= kDoublingMaxOutChannels)
      << "doubling_convolution: input " << to_string(x.dims()) << ", output "
      << to_string(y.dims());
  for (std::size_t i = 2; i < rank; ++i) {
    CAJAL_CHECK(y.dims()[i] == 2 * x.dims()[i])
        << "doubling_convolution: output " << to_string(y.dims()) << " is not twice the input "
        << to_string(x.dims());
  }
  if (rank == 5) {
    doubling_rows<2>(x, weights, bias, y, threads);
  } else {
    doubling_rows<1>(x, weights, bias, y, threads);
  }
}

}  // namespace cajal::engine::detail
