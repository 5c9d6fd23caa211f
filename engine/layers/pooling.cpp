#include "engine/layers/pooling.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void PoolingLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::global_avg_pool) {
    return;
  }
  params_.kernel_size = params.spatial_array("kernel_size", 1);
  const auto rank = params_.kernel_size.size();
  params_.stride = params.spatial("stride", rank, 0, 1);
  if (params_.stride == Dims(rank, 0)) {
    params_.stride = params_.kernel_size;
  }
  params_.padding = params.spatial("padding", rank, 0, 0);
  for (std::size_t i = 0; i < rank; ++i) {
    if (2 * params_.padding[i] > params_.kernel_size[i]) {
      params.fail("padding", "at most half of kernel_size " + to_string(params_.kernel_size),
                  to_string(params_.padding));
    }
  }
  if (type() == LayerType::avg_pool) {
    params_.count_include_pad = params.boolean("count_include_pad", true);
  }
}

Dims PoolingLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (type() == LayerType::global_avg_pool) {
    detail::check_rank(*this, src[0], 0);
    Dims dst(src[0].size(), 1);
    dst[0] = src[0][0];
    dst[1] = src[0][1];
    return dst;
  }
  detail::check_rank(*this, src[0], params_.kernel_size.size() + 2);
  Dims dst{src[0][0], src[0][1]};
  for (std::size_t i = 0; i < params_.kernel_size.size(); ++i) {
    const auto padded = src[0][i + 2] + 2 * params_.padding[i];
    if (padded < params_.kernel_size[i]) {
      fail("input dims " + to_string(src[0]), "a spatial size the kernel fits in",
           "size " + std::to_string(src[0][i + 2]) + " on axis " + std::to_string(i + 2));
    }
    dst.push_back((padded - params_.kernel_size[i]) / params_.stride[i] + 1);
  }
  return dst;
}

void PoolingLayer::set_global_kernel() {
  if (type() != LayerType::global_avg_pool) {
    return;
  }
  const auto& dims = src_dims()[0];
  params_.kernel_size.assign(dims.begin() + 2, dims.end());
  params_.stride = params_.kernel_size;
  params_.padding = Dims(params_.kernel_size.size(), 0);
}

namespace {

// One pooling axis: sizes, kernel, stride and padding (depth is a size 1 axis in 2D).
struct Axis {
  std::int64_t in = 1;
  std::int64_t out = 1;
  std::int64_t kernel = 1;
  std::int64_t stride = 1;
  std::int64_t pad = 0;
};

// The window taps k of output o that fall inside the input: [first, last).
std::pair<std::int64_t, std::int64_t> taps_inside(const Axis& a, std::int64_t o) {
  const auto start = o * a.stride - a.pad;
  return {std::max<std::int64_t>(0, -start), std::min(a.kernel, a.in - start)};
}

// Whether the windows tile the input: kernel equal to stride, no padding, every window inside.
bool tile_the_input(const std::array<Axis, 3>& ax) {
  return std::all_of(ax.begin(), ax.end(), [](const Axis& a) {
    return a.kernel == a.stride && a.pad == 0 && a.out * a.stride <= a.in;
  });
}

// One row of outputs of pooling whose windows tile the input.
struct TileRow {
  const float* corner;  // the first output's window: its first input
  float* dst;
  std::int64_t outputs;
  std::int64_t kd, kh;
  std::int64_t plane, line;  // input values per plane and per row
  float full;                // values per window
};

// kW: the kernel's width when it is a constant here (0: `width` at run time). The row of outputs
// is the accumulator, the window's taps the outer loops and the outputs the inner one, which the
// compiler vectorises.
template <int kW, bool kMax>
void tile_row(const TileRow& r, std::int64_t width) {
  const std::int64_t kw_count = kW > 0 ? kW : width;
  float* dst = r.dst;
  std::fill(dst, dst + r.outputs, kMax ? std::numeric_limits<float>::lowest() : 0.0f);
  for (std::int64_t kd = 0; kd < r.kd; ++kd) {
    for (std::int64_t kh = 0; kh < r.kh; ++kh) {
      for (std::int64_t kw = 0; kw < kw_count; ++kw) {
        const float* at = r.corner + kd * r.plane + kh * r.line + kw;
        for (std::int64_t ow = 0; ow < r.outputs; ++ow) {
          dst[ow] = kMax ? std::max(dst[ow], at[ow * kw_count]) : dst[ow] + at[ow * kw_count];
        }
      }
    }
  }
  if (!kMax) {
    for (std::int64_t ow = 0; ow < r.outputs; ++ow) {
      dst[ow] /= r.full;
    }
  }
}

// The two taps of each output along a row of windows 2 wide: its even and its odd input.
struct Pairs {
  __m256 even, odd;
};
// The 64-bit quarters of v in the order 0, 2, 1, 3.
__attribute__((target("avx2"))) inline __m256 quarters_0213(__m256 v) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
}
__attribute__((target("avx2"))) inline Pairs pairs8(const float* at) {
  const __m256 lo = _mm256_loadu_ps(at);
  const __m256 hi = _mm256_loadu_ps(at + 8);
  // Evens and odds within each 128-bit lane, then the lanes' halves back in order.
  return {quarters_0213(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))),
          quarters_0213(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)))};
}

// The lanes below n of 8 (n 0 to 8), as a mask for _mm256_maskload_ps and _mm256_maskstore_ps.
__attribute__((target("avx2"))) inline __m256i first_lanes(std::int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// pairs8 of the first `outputs` (1 to 7) outputs only: nothing read past their inputs.
__attribute__((target("avx2"))) inline Pairs pairs_masked(const float* at, std::int64_t outputs) {
  const __m256 lo = _mm256_maskload_ps(at, first_lanes(2 * outputs));
  const __m256 hi = _mm256_maskload_ps(at + 8, first_lanes(2 * outputs - 8));
  return {quarters_0213(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))),
          quarters_0213(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)))};
}

// Outputs [first, first + 8) of tile_row<2, kMax> by AVX2: the same operations in the same
// order on 8 outputs at a time (max(a, b) as std::max(a, b): a unless a < b), the same bits.
// With kFew, the row's `r.outputs` (1 to 7) outputs from `first` = 0, under masks.
template <bool kMax, bool kFew = false>
__attribute__((target("avx2"))) void tile_row_pairs8(const TileRow& r, std::int64_t first) {
  __m256 acc = _mm256_set1_ps(kMax ? std::numeric_limits<float>::lowest() : 0.0f);
  for (std::int64_t kd = 0; kd < r.kd; ++kd) {
    for (std::int64_t kh = 0; kh < r.kh; ++kh) {
      const float* at = r.corner + kd * r.plane + kh * r.line + 2 * first;
      const Pairs p = kFew ? pairs_masked(at, r.outputs) : pairs8(at);
      // _mm256_max_ps(x, acc) is x where x > acc and acc otherwise (NaN included).
      acc = kMax ? _mm256_max_ps(p.even, acc) : _mm256_add_ps(acc, p.even);
      acc = kMax ? _mm256_max_ps(p.odd, acc) : _mm256_add_ps(acc, p.odd);
    }
  }
  if (!kMax) {
    acc = _mm256_div_ps(acc, _mm256_set1_ps(r.full));
  }
  if (kFew) {
    _mm256_maskstore_ps(r.dst, first_lanes(r.outputs), acc);
  } else {
    _mm256_storeu_ps(r.dst + first, acc);
  }
}

// tile_row<2, kMax> with AVX2: 8 outputs at a time, the last 8 overlapping the ones before where
// the count is not a multiple of 8 (written twice, alike); fewer than 8 under masks (LeNet-5's
// second pooling: rows of 5).
template <bool kMax>
bool tile_row_pairs(const TileRow& r) {
  if (!detail::avx2_fma_kernels()) {
    return false;
  }
  if (r.outputs < 8) {
    tile_row_pairs8<kMax, true>(r, 0);
    return true;
  }
  for (std::int64_t first = 0; first < r.outputs; first += 8) {
    tile_row_pairs8<kMax>(r, std::min(first, r.outputs - 8));
  }
  return true;
}

}  // namespace

void detail::pool_tile_row(const float* corner, float* dst, std::int64_t outputs,
                           const std::array<std::int64_t, 3>& kernel, std::int64_t plane,
                           std::int64_t line, bool max) {
  const auto [kd, kh, kw] = kernel;
  const TileRow r{corner, dst, outputs, kd, kh, plane, line, static_cast<float>(kd * kh * kw)};
  switch (kw) {
    case 2:
      if (!(max ? tile_row_pairs<true>(r) : tile_row_pairs<false>(r))) {
        max ? tile_row<2, true>(r, kw) : tile_row<2, false>(r, kw);
      }
      break;
    case 3:
      max ? tile_row<3, true>(r, kw) : tile_row<3, false>(r, kw);
      break;
    default:
      max ? tile_row<0, true>(r, kw) : tile_row<0, false>(r, kw);
  }
}

namespace {

using Float8 = float __attribute__((vector_size(32)));

using Float16 = float __attribute__((vector_size(64)));
using Int16 = int __attribute__((vector_size(64)));

// One output's lanes [l, l + lanes of V) of pool_blocked_row.
template <typename V>
[[gnu::always_inline]] inline void pool_blocked_lanes(
    const float* corner, float* row, std::int64_t ow, std::int64_t l, std::int64_t block,
    const std::array<std::int64_t, 3>& kernel, std::int64_t plane, std::int64_t line, bool max) {
  const auto [kd, kh, kw] = kernel;
  V acc = V{} + (max ? std::numeric_limits<float>::lowest() : 0.0f);
  for (std::int64_t a = 0; a < kd; ++a) {
    for (std::int64_t e = 0; e < kh; ++e) {
      for (std::int64_t j = 0; j < kw; ++j) {
        V x;
        std::memcpy(&x, corner + a * plane + e * line + (ow * kw + j) * block + l, sizeof x);
        acc = max ? (x > acc ? x : acc) : acc + x;
      }
    }
  }
  if (!max) {
    acc = acc / static_cast<float>(kd * kh * kw);
  }
  std::memcpy(row + ow * block + l, &acc, sizeof acc);
}

// pool_tile_row's windows (`kernel`, tiling the input) over x in the layout [N, C / B, D, H, W, B]
// of one output row (n, block cb, od, oh) into `row` [OW, B]: for 16 channels at a time (8 where
// B is not a multiple of 16), each window in the order kd, kh, kw, a max as max(x, acc) (x where
// x > acc), an average summed in float from 0 and divided by the window's size: the same
// operations as pool_tile_row's, so the same bytes.
__attribute__((target_clones("avx512f", "avx2", "default"))) void pool_blocked_row(
    const float* corner, float* row, std::int64_t outputs, std::int64_t block,
    const std::array<std::int64_t, 3>& kernel, std::int64_t plane, std::int64_t line, bool max) {
  for (std::int64_t ow = 0; ow < outputs; ++ow) {
    if (block % 16 == 0) {
      for (std::int64_t l = 0; l < block; l += 16) {
        pool_blocked_lanes<Float16>(corner, row, ow, l, block, kernel, plane, line, max);
      }
    } else {
      for (std::int64_t l = 0; l < block; l += 8) {
        pool_blocked_lanes<Float8>(corner, row, ow, l, block, kernel, plane, line, max);
      }
    }
  }
}

// The pooling (windows tiling the input) of x in the layout [N, C / block, D, H, W, block] into y
// in PyTorch's layout: each output row's channels of a block made together, then written to
// their rows of y.
void pool_blocked_to_plain(const float* in, float* out, std::int64_t batch, std::int64_t channels,
                           std::int64_t block, const std::array<Axis, 3>& ax, bool max,
                           int threads) {
  const auto& [d, h, w] = ax;
  const std::int64_t blocks = channels / block;
  const std::int64_t rows = batch * blocks * d.out * h.out;
  const std::int64_t out_plane = d.out * h.out * w.out;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> values(static_cast<std::size_t>(w.out * block));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t oh = r % h.out;
      const std::int64_t od = r / h.out % d.out;
      const std::int64_t nb = r / (h.out * d.out);  // n * blocks + cb
      const float* corner =
          in + ((nb * d.in + od * d.kernel) * h.in + oh * h.kernel) * w.in * block;
      pool_blocked_row(corner, values.data(), w.out, block, {d.kernel, h.kernel, w.kernel},
                       h.in * w.in * block, w.in * block, max);
      const std::int64_t n = nb / blocks;
      const std::int64_t c0 = nb % blocks * block;
      for (std::int64_t l = 0; l < block; ++l) {
        float* dst = out + (n * channels + c0 + l) * out_plane + (od * h.out + oh) * w.out;
        for (std::int64_t ow = 0; ow < w.out; ++ow) {
          dst[ow] = values[static_cast<std::size_t>(ow * block + l)];
        }
      }
    }
  }
}

// The pooling (windows tiling the input) of x into y, both in the layout
// [N, C / block, D, H, W, block]: pool_blocked_row's rows written in place.
void pool_blocked(const float* in, float* out, std::int64_t batch, std::int64_t channels,
                  std::int64_t block, const std::array<Axis, 3>& ax, bool max, int threads) {
  const auto& [d, h, w] = ax;
  const std::int64_t rows = batch * channels / block * d.out * h.out;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t oh = r % h.out;
    const std::int64_t od = r / h.out % d.out;
    const std::int64_t nb = r / (h.out * d.out);  // n * blocks + cb
    const float* corner = in + ((nb * d.in + od * d.kernel) * h.in + oh * h.kernel) * w.in * block;
    pool_blocked_row(corner, out + r * w.out * block, w.out, block, {d.kernel, h.kernel, w.kernel},
                     h.in * w.in * block, w.in * block, max);
  }
}

using Int8 = int __attribute__((vector_size(32)));

// One output's gradient for lanes [l, l + lanes of V) (unpool_blocked_max_row).
template <typename V, typename I>
[[gnu::always_inline]] inline void unpool_blocked_max_lanes(
    const float* x, float* dx, const float* y, const float* dy, std::int64_t ow, std::int64_t l,
    std::int64_t block, const std::array<std::int64_t, 3>& kernel, std::int64_t plane,
    std::int64_t line) {
  const auto [kd, kh, kw] = kernel;
  V best;
  std::memcpy(&best, y + ow * block + l, sizeof best);
  V gradient;
  std::memcpy(&gradient, dy + ow * block + l, sizeof gradient);
  gradient = 0.0f + gradient;
  // The first tap equal to the output, from the last one down; 0 where none is.
  I first = I{};
  int tap = static_cast<int>(kd * kh * kw);
  for (std::int64_t a = kd; a-- > 0;) {
    for (std::int64_t e = kh; e-- > 0;) {
      for (std::int64_t j = kw; j-- > 0;) {
        --tap;
        V v;
        std::memcpy(&v, x + a * plane + e * line + (ow * kw + j) * block + l, sizeof v);
        first = v == best ? I{} + tap : first;
      }
    }
  }
  tap = 0;
  for (std::int64_t a = 0; a < kd; ++a) {
    for (std::int64_t e = 0; e < kh; ++e) {
      for (std::int64_t j = 0; j < kw; ++j) {
        const V v = first == tap ? gradient : V{};
        std::memcpy(dx + a * plane + e * line + (ow * kw + j) * block + l, &v, sizeof v);
        ++tap;
      }
    }
  }
}

// unpool_plain_max's gradient for one output row (n, block cb, od, oh) of windows tiling the
// input, x and dx in the layout [N, C / B, D, H, W, B], y and dy the row's [OW, B]: for 16
// channels at a time (8 where B is not a multiple of 16), the window's first input (in the order
// kd, kh, kw) equal to the output gets 0 + dy, every other input 0 (tap 0 where none is equal:
// all -inf or NaN), as unpool_plain_max does, so the same bytes.
__attribute__((target_clones("avx512f", "avx2", "default"))) void unpool_blocked_max_row(
    const float* x, float* dx, const float* y, const float* dy, std::int64_t outputs,
    std::int64_t block, const std::array<std::int64_t, 3>& kernel, std::int64_t plane,
    std::int64_t line) {
  for (std::int64_t ow = 0; ow < outputs; ++ow) {
    if (block % 16 == 0) {
      for (std::int64_t l = 0; l < block; l += 16) {
        unpool_blocked_max_lanes<Float16, Int16>(x, dx, y, dy, ow, l, block, kernel, plane, line);
      }
    } else {
      for (std::int64_t l = 0; l < block; l += 8) {
        unpool_blocked_max_lanes<Float8, Int8>(x, dx, y, dy, ow, l, block, kernel, plane, line);
      }
    }
  }
}

// unpool_plain_max on the layout [N, C / block, D, H, W, block] (windows tiling the input).
void unpool_blocked_max(const float* src, const float* dst, const float* diff_dst, float* diff_src,
                        std::int64_t batch, std::int64_t channels, std::int64_t block,
                        const std::array<Axis, 3>& ax, int threads) {
  const auto& [d, h, w] = ax;
  // Inputs past the last window (floor mode) take no gradient.
  if (std::any_of(ax.begin(), ax.end(), [](const Axis& a) { return a.out * a.stride != a.in; })) {
    std::fill_n(diff_src, batch * channels * d.in * h.in * w.in, 0.0f);
  }
  const std::int64_t rows = batch * channels / block * d.out * h.out;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t oh = r % h.out;
    const std::int64_t od = r / h.out % d.out;
    const std::int64_t nb = r / (h.out * d.out);
    const std::int64_t corner = ((nb * d.in + od * d.kernel) * h.in + oh * h.kernel) * w.in * block;
    unpool_blocked_max_row(src + corner, diff_src + corner, dst + r * w.out * block,
                           diff_dst + r * w.out * block, w.out, block,
                           {d.kernel, h.kernel, w.kernel}, h.in * w.in * block, w.in * block);
  }
}

// Pooling over plain N C [D] H W by hand, one output row (n, c, od, oh) at a time: oneDNN v2.6
// has only its scalar `simple_nchw` kernel for plain layouts (1-2 GB/s here, 8 % of the CT
// model's forward). Padding is never a maximum and, for `exclude`, never counted.
void pool_plain(const float* in, float* out, std::int64_t planes, const std::array<Axis, 3>& ax,
                bool max, bool exclude_padding, int threads) {
  const auto& [d, h, w] = ax;
  const auto rows = planes * d.out * h.out;
  const auto full = static_cast<double>(d.kernel * h.kernel * w.kernel);
  if (tile_the_input(ax)) {
    // Every window whole and inside (LeNet-5's 2x2): a row of outputs at a time, each window
    // summed in float in the order kd, kh, kw (at most a few dozen values), the kernel's width a
    // constant where it is 2 or 3 so that the compiler vectorises along the row.
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t row = 0; row < rows; ++row) {
      const auto oh = row % h.out;
      const auto od = (row / h.out) % d.out;
      const float* corner = in + (row / (h.out * d.out)) * d.in * h.in * w.in +
                            (od * d.kernel * h.in + oh * h.kernel) * w.in;
      detail::pool_tile_row(corner, out + row * w.out, w.out, {d.kernel, h.kernel, w.kernel},
                            h.in * w.in, w.in, max);
    }
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> best(static_cast<std::size_t>(w.out));
    std::vector<double> sum(static_cast<std::size_t>(w.out));
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < rows; ++row) {
      const auto oh = row % h.out;
      const auto od = (row / h.out) % d.out;
      const float* plane = in + (row / (h.out * d.out)) * d.in * h.in * w.in;
      std::fill(best.begin(), best.end(), std::numeric_limits<float>::lowest());
      std::fill(sum.begin(), sum.end(), 0.0);
      const auto [kd0, kd1] = taps_inside(d, od);
      const auto [kh0, kh1] = taps_inside(h, oh);
      for (auto kd = kd0; kd < kd1; ++kd) {
        for (auto kh = kh0; kh < kh1; ++kh) {
          const float* line =
              plane + ((od * d.stride - d.pad + kd) * h.in + oh * h.stride - h.pad + kh) * w.in;
          for (std::int64_t kw = 0; kw < w.kernel; ++kw) {
            // The outputs whose tap kw is inside the row: 0 <= ow * stride - pad + kw < in.
            const auto shift = kw - w.pad;
            const auto lo = std::max<std::int64_t>(0, (-shift + w.stride - 1) / w.stride);
            const auto last = w.in - 1 - shift;  // ow * stride <= last
            const auto hi = last < 0 ? 0 : std::min(w.out, last / w.stride + 1);
            if (max) {
              for (auto ow = lo; ow < hi; ++ow) {
                best[ow] = std::max(best[ow], line[ow * w.stride + shift]);
              }
            } else {
              for (auto ow = lo; ow < hi; ++ow) {
                sum[ow] += line[ow * w.stride + shift];
              }
            }
          }
        }
      }
      float* dst = out + row * w.out;
      if (max) {
        std::copy(best.begin(), best.end(), dst);
        continue;
      }
      for (std::int64_t ow = 0; ow < w.out; ++ow) {
        double count = full;
        if (exclude_padding) {
          const auto [kw0, kw1] = taps_inside(w, ow);
          count = static_cast<double>((kd1 - kd0) * (kh1 - kh0) * (kw1 - kw0));
        }
        dst[ow] = static_cast<float>(sum[ow] / count);
      }
    }
  }
}

// A row of tiling windows 2 wide, by AVX2: row[2 ow + k] = 0 + shares[ow] / full for k < 2, 8
// outputs at a time (the last 8 overlapping those before), the same bits as the loop in
// unpool_plain_avg. Needs at least 8 outputs.
__attribute__((target("avx2"))) void spread_pairs(const float* shares, float* row,
                                                  std::int64_t outputs, float full) {
  for (std::int64_t first = 0; first < outputs; first += 8) {
    const std::int64_t at = std::min(first, outputs - 8);
    const __m256 share = _mm256_add_ps(
        _mm256_setzero_ps(), _mm256_div_ps(_mm256_loadu_ps(shares + at), _mm256_set1_ps(full)));
    const __m256 lo = _mm256_unpacklo_ps(share, share);  // s0 s0 s1 s1 | s4 s4 s5 s5
    const __m256 hi = _mm256_unpackhi_ps(share, share);  // s2 s2 s3 s3 | s6 s6 s7 s7
    _mm256_storeu_ps(row + 2 * at, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(row + 2 * at + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
}

// The gradient of average pooling by hand, plane by plane: each output's gradient, divided by the
// count its forward divided by, is added to the inputs of its window (oneDNN v2.6's plain-layout
// backward is the scalar simple_nchw kernel, 16 % of a LeNet-5 training step's oneDNN time).
void unpool_plain_avg(const float* diff_dst, float* diff_src, std::int64_t planes,
                      const std::array<Axis, 3>& ax, bool exclude_padding, int threads) {
  const auto& [d, h, w] = ax;
  const auto in_plane = d.in * h.in * w.in;
  const auto out_plane = d.out * h.out * w.out;
  const auto full = static_cast<float>(d.kernel * h.kernel * w.kernel);
  // Windows that tile the input (kernel equal to stride, no padding, all inside it; LeNet-5's
  // 2x2): each input takes its one window's share, a row at a time without per-output clipping.
  const bool tiles = tile_the_input(ax);
  // Windows covering the whole input write every value: nothing to zero first.
  const bool covers = tiles && std::all_of(ax.begin(), ax.end(),
                                           [](const Axis& a) { return a.out * a.stride == a.in; });
  const bool pairs = tiles && w.kernel == 2 && w.out >= 8 && detail::avx2_fma_kernels();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    float* dx = diff_src + plane * in_plane;
    const float* dy = diff_dst + plane * out_plane;
    if (!covers) {
      std::fill(dx, dx + in_plane, 0.0f);
    }
    if (tiles) {
      for (std::int64_t od = 0; od < d.out; ++od) {
        for (std::int64_t oh = 0; oh < h.out; ++oh) {
          const float* shares = dy + (od * h.out + oh) * w.out;
          for (std::int64_t kd = 0; kd < d.kernel; ++kd) {
            for (std::int64_t kh = 0; kh < h.kernel; ++kh) {
              float* row = dx + ((od * d.kernel + kd) * h.in + oh * h.kernel + kh) * w.in;
              if (pairs) {
                spread_pairs(shares, row, w.out, full);
                continue;
              }
              for (std::int64_t ow = 0; ow < w.out; ++ow) {
                // 0 + share, as the general loop below adds it to the zeroed input.
                const float share = 0.0f + shares[ow] / full;
                for (std::int64_t kw = 0; kw < w.kernel; ++kw) {
                  row[ow * w.kernel + kw] = share;
                }
              }
            }
          }
        }
      }
      continue;
    }
    for (std::int64_t od = 0; od < d.out; ++od) {
      const auto [kd0, kd1] = taps_inside(d, od);
      for (std::int64_t oh = 0; oh < h.out; ++oh) {
        const auto [kh0, kh1] = taps_inside(h, oh);
        for (std::int64_t ow = 0; ow < w.out; ++ow) {
          const auto [kw0, kw1] = taps_inside(w, ow);
          const float count =
              exclude_padding ? static_cast<float>((kd1 - kd0) * (kh1 - kh0) * (kw1 - kw0)) : full;
          const float share = dy[(od * h.out + oh) * w.out + ow] / count;
          for (auto kd = kd0; kd < kd1; ++kd) {
            for (auto kh = kh0; kh < kh1; ++kh) {
              float* row =
                  dx + ((od * d.stride - d.pad + kd) * h.in + oh * h.stride - h.pad + kh) * w.in +
                  ow * w.stride - w.pad;
              for (auto kw = kw0; kw < kw1; ++kw) {
                row[kw] += share;
              }
            }
          }
        }
      }
    }
  }
}

// Windows that tile the input (a U-Net's 2x2x2 poolings) of at most kMaxTiledWindow inputs take
// unpool_tiled_max: the same bytes, rows of windows 2 wide by AVX2 (the general loop below took
// 3.5 ms a step for bench/train's 3D U-Net's first pooling, 16 x 64^3).
constexpr std::int64_t kMaxTiledWindow = 64;

// row[2 i] = even[i], row[2 i + 1] = odd[i], i < 8.
__attribute__((target("avx2"))) inline void store_pairs(float* row, __m256 even, __m256 odd) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
  const __m256 hi = _mm256_unpackhi_ps(even, odd);  // e2 o2 e3 o3 | e6 o6 e7 o7
  _mm256_storeu_ps(row, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

// A row of tiling max-pooling windows 2 wide by AVX2, 8 outputs at a time (the last 8 overlapping
// those before; at least 8 outputs), the same bits as unpool_tiled_max's loop: `x_rows` and
// `dx_rows` point at the windows' `rows` input rows (kd, then kh) of the input and its gradient.
__attribute__((target("avx2"))) void unpool_pairs_max(const float* const* x_rows,
                                                      float* const* dx_rows, std::int64_t rows,
                                                      const float* y, const float* dy,
                                                      std::int64_t outputs) {
  for (std::int64_t first = 0; first < outputs; first += 8) {
    const std::int64_t at = std::min(first, outputs - 8);
    const __m256 best = _mm256_loadu_ps(y + at);
    const __m256 gradient = _mm256_add_ps(_mm256_setzero_ps(), _mm256_loadu_ps(dy + at));
    __m256 found = _mm256_setzero_ps();
    __m256 first_even = _mm256_setzero_ps();
    __m256 first_odd = _mm256_setzero_ps();
    for (std::int64_t r = 0; r < rows; ++r) {
      const __m256 a = _mm256_loadu_ps(x_rows[r] + 2 * at);      // x0 .. x7
      const __m256 b = _mm256_loadu_ps(x_rows[r] + 2 * at + 8);  // x8 .. x15
      // x0 x2 .. x14 and x1 x3 .. x15: the windows' first and second inputs.
      const __m256 even = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
      const __m256 odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
      const __m256 even_hit = _mm256_andnot_ps(found, _mm256_cmp_ps(even, best, _CMP_EQ_OQ));
      found = _mm256_or_ps(found, even_hit);
      const __m256 odd_hit = _mm256_andnot_ps(found, _mm256_cmp_ps(odd, best, _CMP_EQ_OQ));
      found = _mm256_or_ps(found, odd_hit);
      if (r == 0) {
        first_even = _mm256_and_ps(even_hit, gradient);
        first_odd = _mm256_and_ps(odd_hit, gradient);
        continue;
      }
      store_pairs(dx_rows[r] + 2 * at, _mm256_and_ps(even_hit, gradient),
                  _mm256_and_ps(odd_hit, gradient));
    }
    // A window with no input equal to its maximum (NaN) gives to its first input.
    store_pairs(dx_rows[0] + 2 * at, _mm256_or_ps(first_even, _mm256_andnot_ps(found, gradient)),
                first_odd);
  }
}

// unpool_plain_max's gradient for one plane whose windows tile the input: the first input of each
// window equal to its maximum (in the order kd, kh, kw; else the window's first input) takes
// 0 + its gradient, as when added to zeros, the window's others 0. No branch on where the
// maximum lies (the general loop's mispredict).
void unpool_tiled_max(const float* x, const float* y, const float* dy, float* dx,
                      const std::array<Axis, 3>& ax) {
  const auto& [d, h, w] = ax;
  const std::int64_t window = d.kernel * h.kernel * w.kernel;
  const std::int64_t rows = d.kernel * h.kernel;
  const bool pairs = w.kernel == 2 && w.out >= 8 && detail::avx2_fma_kernels();
  std::array<std::int64_t, kMaxTiledWindow> offsets{};  // from the window's first input
  std::int64_t tap = 0;
  for (std::int64_t kd = 0; kd < d.kernel; ++kd) {
    for (std::int64_t kh = 0; kh < h.kernel; ++kh) {
      for (std::int64_t kw = 0; kw < w.kernel; ++kw) {
        offsets[static_cast<std::size_t>(tap++)] = (kd * h.in + kh) * w.in + kw;
      }
    }
  }
  std::array<const float*, kMaxTiledWindow> x_rows{};
  std::array<float*, kMaxTiledWindow> dx_rows{};
  for (std::int64_t od = 0; od < d.out; ++od) {
    for (std::int64_t oh = 0; oh < h.out; ++oh) {
      const std::int64_t corner = (od * d.kernel * h.in + oh * h.kernel) * w.in;
      const std::int64_t out_row = (od * h.out + oh) * w.out;
      if (pairs) {
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t offset = offsets[static_cast<std::size_t>(2 * r)];
          x_rows[static_cast<std::size_t>(r)] = x + corner + offset;
          dx_rows[static_cast<std::size_t>(r)] = dx + corner + offset;
        }
        unpool_pairs_max(x_rows.data(), dx_rows.data(), rows, y + out_row, dy + out_row, w.out);
        continue;
      }
      for (std::int64_t ow = 0; ow < w.out; ++ow) {
        const std::int64_t first = corner + ow * w.kernel;
        const float best = y[out_row + ow];
        std::int64_t at = 0;
        for (std::int64_t t = window; t-- > 0;) {
          at = x[first + offsets[static_cast<std::size_t>(t)]] == best ? t : at;
        }
        const float gradient = 0.0f + dy[out_row + ow];
        for (std::int64_t t = 0; t < window; ++t) {
          dx[first + offsets[static_cast<std::size_t>(t)]] = t == at ? gradient : 0.0f;
        }
      }
    }
  }
}

// The gradient of max pooling by hand, plane by plane: each output's gradient goes to the first
// input of its window (in the order kd, kh, kw) that holds the output's value, the maximum that
// pool_plain found: where oneDNN's workspace would point, as its forward takes only a strictly
// larger value (a window with no such input, all -inf or NaN, gives to its first input inside).
// oneDNN v2.6 has only its scalar simple_nchw kernels for plain layouts, forward and backward.
void unpool_plain_max(const float* src, const float* dst, const float* diff_dst, float* diff_src,
                      std::int64_t planes, const std::array<Axis, 3>& ax, int threads) {
  const auto& [d, h, w] = ax;
  const auto in_plane = d.in * h.in * w.in;
  const auto out_plane = d.out * h.out * w.out;
  const bool tiles = tile_the_input(ax) && d.kernel * h.kernel * w.kernel <= kMaxTiledWindow;
  // Windows covering the whole input write every value: nothing to zero first.
  const bool covers = tiles && std::all_of(ax.begin(), ax.end(),
                                           [](const Axis& a) { return a.out * a.stride == a.in; });
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const float* x = src + plane * in_plane;
    float* dx = diff_src + plane * in_plane;
    const float* y = dst + plane * out_plane;
    const float* dy = diff_dst + plane * out_plane;
    if (!covers) {
      std::fill(dx, dx + in_plane, 0.0f);
    }
    if (tiles) {
      unpool_tiled_max(x, y, dy, dx, ax);
      continue;
    }
    for (std::int64_t od = 0; od < d.out; ++od) {
      const auto [kd0, kd1] = taps_inside(d, od);
      for (std::int64_t oh = 0; oh < h.out; ++oh) {
        const auto [kh0, kh1] = taps_inside(h, oh);
        for (std::int64_t ow = 0; ow < w.out; ++ow) {
          const auto [kw0, kw1] = taps_inside(w, ow);
          const float best = y[(od * h.out + oh) * w.out + ow];
          std::int64_t at = -1;
          for (auto kd = kd0; kd < kd1 && at < 0; ++kd) {
            for (auto kh = kh0; kh < kh1 && at < 0; ++kh) {
              const std::int64_t row =
                  ((od * d.stride - d.pad + kd) * h.in + oh * h.stride - h.pad + kh) * w.in +
                  ow * w.stride - w.pad;
              for (auto kw = kw0; kw < kw1; ++kw) {
                if (x[row + kw] == best) {
                  at = row + kw;
                  break;
                }
              }
            }
          }
          if (at < 0) {
            at = ((od * d.stride - d.pad + kd0) * h.in + oh * h.stride - h.pad + kh0) * w.in +
                 ow * w.stride - w.pad + kw0;
          }
          dx[at] += dy[(od * h.out + oh) * w.out + ow];
        }
      }
    }
  }
}

class DnnlPooling final : public PoolingLayer {
 public:
  using PoolingLayer::PoolingLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (train_block_ > 1) {
      pool_blocked(src[0]->data(), dst.data(), src[0]->dim(0), src[0]->dim(1), train_block_, axes_,
                   true, ctx_->threads);
      return;
    }
    if (read_block_ > 1) {
      pool_blocked_to_plain(src[0]->data(), dst.data(), src[0]->dim(0), src[0]->dim(1), read_block_,
                            axes_, type() == LayerType::max_pool, ctx_->threads);
      return;
    }
    if (block_ > 1) {
      // oneDNN's own kernel for the layout: a max is exact, the same values as pool_plain's.
      blocked_.execute(ctx_->stream,
                       {{DNNL_ARG_SRC,
                         dnnl::memory(src_desc_, ctx_->engine, const_cast<float*>(src[0]->data()))},
                        {DNNL_ARG_DST, dnnl::memory(dst_desc_, ctx_->engine, dst.data())}});
      ctx_->stream.wait();
      return;
    }
    pool_plain(src[0]->data(), dst.data(), src[0]->dim(0) * src[0]->dim(1), axes_,
               type() == LayerType::max_pool, !params().count_include_pad, ctx_->threads);
  }

  bool take_blocked(std::int64_t block) override {
    using tag = dnnl::memory::format_tag;
    if (!prepared() || training() || type() != LayerType::max_pool || block_ != 1 ||
        read_block_ != 1) {
      return false;
    }
    const Dims& in = src_dims()[0];
    const std::size_t rank = in.size() - 2;
    if ((rank != 2 && rank != 3) || block <= 1 || in[1] % block != 0 ||
        (block != 8 && block != 16 && block != in[1])) {
      return false;
    }
    const bool three = rank == 3;
    const tag layout = block == in[1] ? (three ? tag::ndhwc : tag::nhwc)
                       : block == 16  ? (three ? tag::nCdhw16c : tag::nChw16c)
                                      : (three ? tag::nCdhw8c : tag::nChw8c);
    dnnl::memory::dims strides;
    dnnl::memory::dims kernel;
    dnnl::memory::dims pad_left;
    dnnl::memory::dims pad_right;
    for (std::size_t i = 3 - rank; i < 3; ++i) {
      const Axis& a = axes_[i];
      strides.push_back(a.stride);
      kernel.push_back(a.kernel);
      pad_left.push_back(a.pad);
      // Floor mode: the padding on the right that the last window reaches (at most the left's);
      // negative where it leaves input values out, which oneDNN's kernel does not take.
      pad_right.push_back((a.out - 1) * a.stride + a.kernel - a.in - a.pad);
      if (pad_right.back() < 0) {
        return false;
      }
    }
    src_desc_ = detail::tagged_desc(in, layout);
    dst_desc_ = detail::tagged_desc(dst_dims(), layout);
    const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference,
                                           dnnl::algorithm::pooling_max, src_desc_, dst_desc_,
                                           strides, kernel, pad_left, pad_right);
    blocked_ = dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(desc, ctx_->engine));
    block_ = block;
    return true;
  }

  std::int64_t channel_block() const override { return block_; }

  bool read_blocked(std::int64_t block) override {
    if (!prepared() || training() || block_ != 1 || read_block_ != 1 ||
        (type() != LayerType::max_pool && type() != LayerType::avg_pool) ||
        !tile_the_input(axes_) || block <= 1 || block % 8 != 0 || src_dims()[0][1] % block != 0) {
      return false;
    }
    read_block_ = block;
    return true;
  }

  bool can_take_blocked_in_training(std::int64_t block) const override {
    const Dims& in = src_dims()[0];
    return prepared() && training() && type() == LayerType::max_pool && tile_the_input(axes_) &&
           (in.size() == 4 || in.size() == 5) && block > 1 && block % 8 == 0 && in[1] % block == 0;
  }

  void take_blocked_in_training(std::int64_t block) override {
    CAJAL_CHECK(can_take_blocked_in_training(block)) << label() << ": blocks of " << block;
    train_block_ = block;
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& dst, const Tensor& diff_dst,
                const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && prepared()) << label() << ": backward needs a training prepare()";
    CAJAL_CHECK(diff_dst.dims() == dst_dims() && diff_src.size() == 1) << label();
    if (diff_src[0] == nullptr) {
      return;
    }
    CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
    const auto& ctx = *ctx_;
    if (train_block_ > 1) {
      unpool_blocked_max(src[0]->data(), dst.data(), diff_dst.data(), diff_src[0]->data(),
                         src[0]->dim(0), src[0]->dim(1), train_block_, axes_, ctx.threads);
      return;
    }
    if (type() != LayerType::max_pool) {
      unpool_plain_avg(diff_dst.data(), diff_src[0]->data(), diff_dst.dim(0) * diff_dst.dim(1),
                       axes_, !params().count_include_pad, ctx.threads);
      return;
    }
    unpool_plain_max(src[0]->data(), dst.data(), diff_dst.data(), diff_src[0]->data(),
                     diff_dst.dim(0) * diff_dst.dim(1), axes_, ctx.threads);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    block_ = 1;  // the Net links anew after each prepare
    read_block_ = 1;
    train_block_ = 1;
    blocked_ = {};
    set_global_kernel();
    const auto& p = params();
    const auto rank = p.kernel_size.size();
    for (std::size_t i = 0; i < 3; ++i) {
      if (i + rank < 3) {
        axes_[i] = Axis{};
        continue;
      }
      const auto k = i + rank - 3;
      axes_[i] = Axis{.in = src_dims()[0][k + 2],
                      .out = dst_dims()[k + 2],
                      .kernel = p.kernel_size[k],
                      .stride = p.stride[k],
                      .pad = p.padding[k]};
    }
    // pool_plain, unpool_plain_avg and unpool_plain_max do the rest.
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  std::array<Axis, 3> axes_;
  std::int64_t read_block_ = 1;   // read_blocked's
  std::int64_t train_block_ = 1;  // take_blocked_in_training's
  std::int64_t block_ = 1;        // take_blocked's, with its primitive and layouts
  dnnl::primitive blocked_;
  dnnl::memory::desc src_desc_;
  dnnl::memory::desc dst_desc_;
};

}  // namespace

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name) {
  return std::make_unique<DnnlPooling>(type, std::move(name));
}

}  // namespace cajal::engine
