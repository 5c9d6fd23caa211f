#include "engine/layers/norm_layouts.h"

#include <immintrin.h>

#include <cstring>

#include "engine/layers/common.h"

namespace cajal::engine::detail {

namespace {

// Each function below runs one sample's whole tiles of 8 positions (those before `end`) and
// returns the first position it left; the caller does the rest one value at a time. The tiles run
// by AVX-512F intrinsics where avx512_kernels() allows, else by portable vectors (cloned for
// AVX2); both make the same operations in the same order (no fused multiply-add: this file is
// compiled with -ffp-contract=off), so the same bytes.

// Where sample n's channels [c0, c0 + 8) lie in layout l: value (c0 + k, p) at
// first + p * position_stride + k * channel_stride.
struct GroupView {
  std::int64_t first;
  std::int64_t position_stride;
  std::int64_t channel_stride;
  bool plain() const { return position_stride == 1; }
};

GroupView group_view(const NormLayout& l, std::int64_t n, std::int64_t c0) {
  if (l.block == 1) {
    return {(n * l.channels + c0) * l.positions, 1, l.positions};
  }
  return {(n * (l.channels / l.block) + c0 / l.block) * l.positions * l.block + c0 % l.block,
          l.block, 1};
}

// Value (c0 + k, p) of view v.
std::int64_t at(const GroupView& v, int k, std::int64_t p) {
  return v.first + p * v.position_stride + k * v.channel_stride;
}

// ---- Portable vectors.

using Float8 = float __attribute__((vector_size(32)));
using Int8 = int __attribute__((vector_size(32)));
using Double8 = double __attribute__((vector_size(64)));

// The 8 x 8 floats of r transposed: r[j] becomes what was lane j of each.
[[gnu::always_inline]] inline void transpose8(Float8 (&r)[8]) {
  Float8 t[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = __builtin_shuffle(r[k], r[k + 1], Int8{0, 8, 1, 9, 4, 12, 5, 13});
    t[k + 1] = __builtin_shuffle(r[k], r[k + 1], Int8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  Float8 u[8];
  for (int k = 0; k < 8; k += 4) {
    u[k] = __builtin_shuffle(t[k], t[k + 2], Int8{0, 1, 8, 9, 4, 5, 12, 13});
    u[k + 1] = __builtin_shuffle(t[k], t[k + 2], Int8{2, 3, 10, 11, 6, 7, 14, 15});
    u[k + 2] = __builtin_shuffle(t[k + 1], t[k + 3], Int8{0, 1, 8, 9, 4, 5, 12, 13});
    u[k + 3] = __builtin_shuffle(t[k + 1], t[k + 3], Int8{2, 3, 10, 11, 6, 7, 14, 15});
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = __builtin_shuffle(u[k], u[k + 4], Int8{0, 1, 2, 3, 8, 9, 10, 11});
    r[k + 4] = __builtin_shuffle(u[k], u[k + 4], Int8{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// A group's 8 channels at positions [p, p + 8), position by position: r[j][k] is the value of
// channel c0 + k at position p + j (view v of x).
[[gnu::always_inline]] inline void load_tile(const float* x, const GroupView& v, std::int64_t p,
                                             Float8 (&r)[8]) {
  const float* base = x + v.first + p * v.position_stride;
  if (v.plain()) {
    for (int k = 0; k < 8; ++k) {
      std::memcpy(&r[k], base + k * v.channel_stride, sizeof r[k]);
    }
    transpose8(r);
    return;
  }
  for (int j = 0; j < 8; ++j) {
    std::memcpy(&r[j], base + j * v.position_stride, sizeof r[j]);
  }
}

[[gnu::always_inline]] inline void store_tile(float* y, const GroupView& v, std::int64_t p,
                                              const Float8 (&r)[8]) {
  float* base = y + v.first + p * v.position_stride;
  if (v.plain()) {
    Float8 t[8];
    std::memcpy(t, r, sizeof t);
    transpose8(t);
    for (int k = 0; k < 8; ++k) {
      std::memcpy(base + k * v.channel_stride, &t[k], sizeof t[k]);
    }
    return;
  }
  for (int j = 0; j < 8; ++j) {
    std::memcpy(base + j * v.position_stride, &r[j], sizeof r[j]);
  }
}

[[gnu::always_inline]] inline void load8(const float* values, Float8& v) {
  std::memcpy(&v, values, sizeof v);
}

// A fused ReLU's gradient from the forward's y > 0 test: g (dy) there, +0 elsewhere (NaN: +0).
[[gnu::always_inline]] inline void relu_gradient(const Float8& x, const Float8& scale,
                                                 const Float8& shift, Float8& g) {
  g = x * scale + shift > 0.0f ? g : Float8{};
}

__attribute__((target_clones("avx2", "default"))) std::int64_t moments_tiles(
    const float* x, const GroupView& xv, std::int64_t end, GroupSums& sum, GroupSums& squares) {
  Double8 s[4];
  Double8 q[4];
  std::memcpy(s, sum.lane, sizeof s);
  std::memcpy(q, squares.lane, sizeof q);
  std::int64_t p = 0;
  for (; p + 8 <= end; p += 8) {
    Float8 r[8];
    load_tile(x, xv, p, r);
    for (int j = 0; j < 8; ++j) {
      const Double8 d = __builtin_convertvector(r[j], Double8);
      s[j % 4] += d;
      q[j % 4] += d * d;
    }
  }
  std::memcpy(sum.lane, s, sizeof s);
  std::memcpy(squares.lane, q, sizeof q);
  return p;
}

__attribute__((target_clones("avx2", "default"))) std::int64_t normalize_tiles(
    const float* x, const GroupView& xv, float* y, const GroupView& yv, std::int64_t first,
    std::int64_t end, const float* scale, const float* shift, bool relu) {
  Float8 sc;
  Float8 sh;
  load8(scale, sc);
  load8(shift, sh);
  std::int64_t p = first;
  for (; p + 8 <= end; p += 8) {
    Float8 r[8];
    load_tile(x, xv, p, r);
    for (auto& v : r) {
      v = v * sc + sh;
      if (relu) {
        v = v < 0.0f ? Float8{} : v;
      }
    }
    store_tile(y, yv, p, r);
  }
  return p;
}

__attribute__((target_clones("avx2", "default"))) std::int64_t gradient_sums_tiles(
    const float* x, const GroupView& xv, const float* dy, const GroupView& gv, std::int64_t end,
    const float* mean, const float* scale, const float* shift, bool relu, GroupSums& sum,
    GroupSums& sum_x) {
  Float8 m;
  Float8 sc;
  Float8 sh;
  load8(mean, m);
  load8(scale, sc);
  load8(shift, sh);
  Double8 s[4];
  Double8 sx[4];
  std::memcpy(s, sum.lane, sizeof s);
  std::memcpy(sx, sum_x.lane, sizeof sx);
  std::int64_t p = 0;
  for (; p + 8 <= end; p += 8) {
    Float8 r[8];
    Float8 g[8];
    load_tile(x, xv, p, r);
    load_tile(dy, gv, p, g);
    for (int j = 0; j < 8; ++j) {
      if (relu) {
        relu_gradient(r[j], sc, sh, g[j]);
      }
      const Double8 gd = __builtin_convertvector(g[j], Double8);
      s[j % 4] += gd;
      sx[j % 4] += gd * __builtin_convertvector(r[j] - m, Double8);
    }
  }
  std::memcpy(sum.lane, s, sizeof s);
  std::memcpy(sum_x.lane, sx, sizeof sx);
  return p;
}

__attribute__((target_clones("avx2", "default"))) std::int64_t gradient_tiles(
    const float* x, const GroupView& xv, const float* dy, const GroupView& gv, float* dx,
    std::int64_t first, std::int64_t end, const float* scale, const float* shift, bool relu,
    const float* a, const float* b, const float* c) {
  Float8 sc;
  Float8 sh;
  Float8 av;
  Float8 bv;
  Float8 cv;
  load8(scale, sc);
  load8(shift, sh);
  load8(a, av);
  load8(b, bv);
  load8(c, cv);
  std::int64_t p = first;
  for (; p + 8 <= end; p += 8) {
    Float8 r[8];
    Float8 g[8];
    load_tile(x, xv, p, r);
    load_tile(dy, gv, p, g);
    for (int j = 0; j < 8; ++j) {
      if (relu) {
        relu_gradient(r[j], sc, sh, g[j]);
      }
      g[j] = av * g[j] + (bv * r[j] + cv);
    }
    store_tile(dx, xv, p, g);
  }
  return p;
}

// ---- AVX-512F intrinsics (the same operations; the layouts and the ReLU as template arguments).

#define CAJAL_AVX512 __attribute__((target("avx512f")))
#define CAJAL_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) inline

CAJAL_AVX512_INLINE void transpose8x8(__m256 (&r)[8]) {
  __m256 t[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  __m256 u[8];
  for (int k = 0; k < 8; k += 4) {
    u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
    r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
  }
}

template <bool kPlain>
CAJAL_AVX512_INLINE void load_tile512(const float* x, const GroupView& v, std::int64_t p,
                                      __m256 (&r)[8]) {
  const float* base = x + v.first + p * v.position_stride;
  if constexpr (kPlain) {
    for (int k = 0; k < 8; ++k) {
      r[k] = _mm256_loadu_ps(base + k * v.channel_stride);
    }
    transpose8x8(r);
  } else {
    for (int j = 0; j < 8; ++j) {
      r[j] = _mm256_loadu_ps(base + j * v.position_stride);
    }
  }
}

template <bool kPlain>
CAJAL_AVX512_INLINE void store_tile512(float* y, const GroupView& v, std::int64_t p,
                                       __m256 (&r)[8]) {
  float* base = y + v.first + p * v.position_stride;
  if constexpr (kPlain) {
    transpose8x8(r);
    for (int k = 0; k < 8; ++k) {
      _mm256_storeu_ps(base + k * v.channel_stride, r[k]);
    }
  } else {
    for (int j = 0; j < 8; ++j) {
      _mm256_storeu_ps(base + j * v.position_stride, r[j]);
    }
  }
}

// The 8 floats as doubles (under a full mask: GCC 12 takes the unmasked form's undefined
// pass-through for uninitialised).
CAJAL_AVX512_INLINE __m512d widen512(__m256 v) {
  return _mm512_maskz_cvtps_pd(0xff, v);
}

// relu_gradient: g where x * scale + shift > 0 (ordered: NaN is not), +0 elsewhere.
CAJAL_AVX512_INLINE __m256 relu_gradient512(__m256 x, __m256 g, __m256 scale, __m256 shift) {
  const __m256 y = _mm256_add_ps(_mm256_mul_ps(x, scale), shift);
  return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), g);
}

// A group's four lanes of sums in registers, and back.
CAJAL_AVX512_INLINE void load_lanes(const GroupSums& sums, __m512d (&lanes)[4]) {
  for (int l = 0; l < 4; ++l) {
    lanes[l] = _mm512_loadu_pd(sums.lane[l]);
  }
}

CAJAL_AVX512_INLINE void store_lanes(const __m512d (&lanes)[4], GroupSums& sums) {
  for (int l = 0; l < 4; ++l) {
    _mm512_storeu_pd(sums.lane[l], lanes[l]);
  }
}

template <bool kPlain>
CAJAL_AVX512 std::int64_t moments_tiles512(const float* x, const GroupView& xv, std::int64_t end,
                                           GroupSums& sum, GroupSums& squares) {
  __m512d s[4];
  __m512d q[4];
  load_lanes(sum, s);
  load_lanes(squares, q);
  std::int64_t p = 0;
  for (; p + 8 <= end; p += 8) {
    __m256 r[8];
    load_tile512<kPlain>(x, xv, p, r);
    for (int j = 0; j < 8; ++j) {
      const __m512d d = widen512(r[j]);
      s[j % 4] = _mm512_add_pd(s[j % 4], d);
      q[j % 4] = _mm512_add_pd(q[j % 4], _mm512_mul_pd(d, d));
    }
  }
  store_lanes(s, sum);
  store_lanes(q, squares);
  return p;
}

template <bool kPlainIn, bool kPlainOut, bool kRelu>
CAJAL_AVX512 std::int64_t normalize_tiles512(const float* x, const GroupView& xv, float* y,
                                             const GroupView& yv, std::int64_t first,
                                             std::int64_t end, const float* scale,
                                             const float* shift) {
  const __m256 sc = _mm256_loadu_ps(scale);
  const __m256 sh = _mm256_loadu_ps(shift);
  std::int64_t p = first;
  for (; p + 8 <= end; p += 8) {
    __m256 r[8];
    load_tile512<kPlainIn>(x, xv, p, r);
    for (auto& v : r) {
      v = _mm256_add_ps(_mm256_mul_ps(v, sc), sh);
      if constexpr (kRelu) {  // v < 0 ? 0 : v
        v = _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ), v);
      }
    }
    store_tile512<kPlainOut>(y, yv, p, r);
  }
  return p;
}

template <bool kPlainX, bool kPlainG, bool kRelu>
CAJAL_AVX512 std::int64_t gradient_sums_tiles512(const float* x, const GroupView& xv,
                                                 const float* dy, const GroupView& gv,
                                                 std::int64_t end, const float* mean,
                                                 const float* scale, const float* shift,
                                                 GroupSums& sum, GroupSums& sum_x) {
  const __m256 m = _mm256_loadu_ps(mean);
  const __m256 sc = _mm256_loadu_ps(scale);
  const __m256 sh = _mm256_loadu_ps(shift);
  __m512d s[4];
  __m512d sx[4];
  load_lanes(sum, s);
  load_lanes(sum_x, sx);
  std::int64_t p = 0;
  for (; p + 8 <= end; p += 8) {
    __m256 r[8];
    __m256 g[8];
    load_tile512<kPlainX>(x, xv, p, r);
    load_tile512<kPlainG>(dy, gv, p, g);
    for (int j = 0; j < 8; ++j) {
      const __m256 gj = kRelu ? relu_gradient512(r[j], g[j], sc, sh) : g[j];
      const __m512d gd = widen512(gj);
      s[j % 4] = _mm512_add_pd(s[j % 4], gd);
      sx[j % 4] = _mm512_add_pd(sx[j % 4], _mm512_mul_pd(gd, widen512(_mm256_sub_ps(r[j], m))));
    }
  }
  store_lanes(s, sum);
  store_lanes(sx, sum_x);
  return p;
}

template <bool kPlainX, bool kPlainG, bool kRelu>
CAJAL_AVX512 std::int64_t gradient_tiles512(const float* x, const GroupView& xv, const float* dy,
                                            const GroupView& gv, float* dx, std::int64_t first,
                                            std::int64_t end, const float* scale,
                                            const float* shift, const float* a, const float* b,
                                            const float* c) {
  const __m256 sc = _mm256_loadu_ps(scale);
  const __m256 sh = _mm256_loadu_ps(shift);
  const __m256 av = _mm256_loadu_ps(a);
  const __m256 bv = _mm256_loadu_ps(b);
  const __m256 cv = _mm256_loadu_ps(c);
  std::int64_t p = first;
  for (; p + 8 <= end; p += 8) {
    __m256 r[8];
    __m256 g[8];
    load_tile512<kPlainX>(x, xv, p, r);
    load_tile512<kPlainG>(dy, gv, p, g);
    for (int j = 0; j < 8; ++j) {
      const __m256 gj = kRelu ? relu_gradient512(r[j], g[j], sc, sh) : g[j];
      g[j] = _mm256_add_ps(_mm256_mul_ps(av, gj), _mm256_add_ps(_mm256_mul_ps(bv, r[j]), cv));
    }
    store_tile512<kPlainX>(dx, xv, p, g);
  }
  return p;
}

#undef CAJAL_AVX512
#undef CAJAL_AVX512_INLINE

// f.template operator()<a, b, c>() for the booleans given at run time.
template <typename F>
std::int64_t dispatch(bool a, bool b, bool c, F&& f) {
  if (a) {
    if (b) {
      return c ? f.template operator()<true, true, true>()
               : f.template operator()<true, true, false>();
    }
    return c ? f.template operator()<true, false, true>()
             : f.template operator()<true, false, false>();
  }
  if (b) {
    return c ? f.template operator()<false, true, true>()
             : f.template operator()<false, true, false>();
  }
  return c ? f.template operator()<false, false, true>()
           : f.template operator()<false, false, false>();
}

}  // namespace

void group_moments(const float* x, const NormLayout& in, std::int64_t group, GroupSums& sum,
                   GroupSums& squares) {
  const std::int64_t vector_end = in.positions - in.positions % 4;
  const bool avx512 = avx512_kernels();
  for (std::int64_t n = 0; n < in.samples; ++n) {
    const GroupView xv = group_view(in, n, 8 * group);
    std::int64_t p = 0;
    if (!avx512) {
      p = moments_tiles(x, xv, vector_end, sum, squares);
    } else if (xv.plain()) {
      p = moments_tiles512<true>(x, xv, vector_end, sum, squares);
    } else {
      p = moments_tiles512<false>(x, xv, vector_end, sum, squares);
    }
    for (; p < in.positions; ++p) {
      const auto lane = p < vector_end ? static_cast<std::size_t>(p % 4) : 0;
      for (int k = 0; k < 8; ++k) {
        const double v = x[at(xv, k, p)];
        sum.lane[lane][k] += v;
        squares.lane[lane][k] += v * v;
      }
    }
  }
}

void group_normalize(const float* x, const NormLayout& in, float* y, const NormLayout& out,
                     std::int64_t group, std::int64_t sample, std::int64_t first, std::int64_t last,
                     const float* scale, const float* shift, bool relu) {
  const GroupView xv = group_view(in, sample, 8 * group);
  const GroupView yv = group_view(out, sample, 8 * group);
  std::int64_t p = first;
  if (!avx512_kernels()) {
    p = normalize_tiles(x, xv, y, yv, first, last, scale, shift, relu);
  } else {
    p = dispatch(xv.plain(), yv.plain(), relu, [&]<bool kIn, bool kOut, bool kRelu>() {
      return normalize_tiles512<kIn, kOut, kRelu>(x, xv, y, yv, first, last, scale, shift);
    });
  }
  for (; p < last; ++p) {
    for (int k = 0; k < 8; ++k) {
      const float v = x[at(xv, k, p)] * scale[k] + shift[k];
      y[at(yv, k, p)] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

void group_gradient_sums(const float* x, const NormLayout& in, const float* dy,
                         const NormLayout& dl, std::int64_t group, const float* mean,
                         const float* scale, const float* shift, bool relu, GroupSums& sum,
                         GroupSums& sum_x) {
  const std::int64_t vector_end = in.positions - in.positions % 4;
  const bool avx512 = avx512_kernels();
  for (std::int64_t n = 0; n < in.samples; ++n) {
    const GroupView xv = group_view(in, n, 8 * group);
    const GroupView gv = group_view(dl, n, 8 * group);
    std::int64_t p = 0;
    if (!avx512) {
      p = gradient_sums_tiles(x, xv, dy, gv, vector_end, mean, scale, shift, relu, sum, sum_x);
    } else {
      p = dispatch(xv.plain(), gv.plain(), relu, [&]<bool kX, bool kG, bool kRelu>() {
        return gradient_sums_tiles512<kX, kG, kRelu>(x, xv, dy, gv, vector_end, mean, scale, shift,
                                                     sum, sum_x);
      });
    }
    for (; p < in.positions; ++p) {
      const auto lane = p < vector_end ? static_cast<std::size_t>(p % 4) : 0;
      for (int k = 0; k < 8; ++k) {
        const float xi = x[at(xv, k, p)];
        const float g = relu && !(xi * scale[k] + shift[k] > 0.0f) ? 0.0f : dy[at(gv, k, p)];
        sum.lane[lane][k] += g;
        sum_x.lane[lane][k] += static_cast<double>(g) * (xi - mean[k]);
      }
    }
  }
}

void group_gradient(const float* x, const NormLayout& in, const float* dy, const NormLayout& dl,
                    float* dx, std::int64_t group, std::int64_t sample, std::int64_t first,
                    std::int64_t last, const float* scale, const float* shift, bool relu,
                    const float* a, const float* b, const float* c) {
  const GroupView xv = group_view(in, sample, 8 * group);
  const GroupView gv = group_view(dl, sample, 8 * group);
  std::int64_t p = first;
  if (!avx512_kernels()) {
    p = gradient_tiles(x, xv, dy, gv, dx, first, last, scale, shift, relu, a, b, c);
  } else {
    p = dispatch(xv.plain(), gv.plain(), relu, [&]<bool kX, bool kG, bool kRelu>() {
      return gradient_tiles512<kX, kG, kRelu>(x, xv, dy, gv, dx, first, last, scale, shift, a, b,
                                              c);
    });
  }
  for (; p < last; ++p) {
    for (int k = 0; k < 8; ++k) {
      const std::int64_t i = at(xv, k, p);
      const float xi = x[i];
      const float g = relu && !(xi * scale[k] + shift[k] > 0.0f) ? 0.0f : dy[at(gv, k, p)];
      dx[i] = a[k] * g + (b[k] * xi + c[k]);
    }
  }
}

}  // namespace cajal::engine::detail
