// Internal to engine/: checks shared by the layer families.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine::detail {

// Throws unless there are exactly `count` inputs (count 0: at least two).
void check_input_count(const Layer& layer, const std::vector<Dims>& src, std::size_t count);
// Throws unless the input has `rank` dims (rank 0: 4 or 5, that is 2D or 3D images).
void check_rank(const Layer& layer, const Dims& dims, std::size_t rank);
// Throws unless dims[1] == channels.
void check_channels(const Layer& layer, const Dims& dims, std::int64_t channels);

// tanh of `count` values of `in` into `out` (which may be `in`) on `threads` threads, by hand:
// oneDNN v2.6's tanh reads a table with AVX2 gathers, slow on this AMD EPYC (5.5 ms for LeNet-5's
// 1.2 M first-layer values on one thread, against 0.4 ms for relu). Here the odd rational
// approximation x p(x^2) / q(x^2) of degrees 13 and 6 that Eigen and ONNX Runtime (MLAS) use, on
// x clamped to +-7.90531 (where it reaches 1), and x itself below 0.0004: within 6.4 units in the
// last place of float and 3.9e-7 of tanh everywhere, |tanh| never above 1, NaN stays NaN. Plain
// multiplies and adds in a fixed order, so every CPU and thread count gives the same bytes.
void tanh_by_hand(const float* in, float* out, std::int64_t count, int threads);
// The same on the calling thread alone (the same bytes).
void tanh_values(const float* in, float* out, std::int64_t count);

// Adds to sum[l] and squares[l], l = i % 4, x_i and x_i^2 (in double) for the `count` values of
// x: four lanes, each in order, so every CPU's clone gives the same bytes.
void add_moments(const float* x, std::int64_t count, double* sum, double* squares);
// y_i = v > 0 ? v : slope * v with v = x_i * scale + shift (a multiply, then an add).
void scale_shift_slope(const float* x, float* y, std::int64_t count, float scale, float shift,
                       float slope);

// The same for `positions` positions of `block` channels each, x[p * block + l] (a blocked or
// channels-last layout): adds to sum[l] and squares[l] x and x^2 (in double) for l < block, each
// lane in position order, so every CPU's clone gives the same bytes. `block` a multiple of 8.
void add_block_moments(const float* x, std::int64_t positions, std::int64_t block, double* sum,
                       double* squares);
// y[p * block + l] = v > 0 ? v : slope[l] * v with v = x[p * block + l] * scale[l] + shift[l]
// (a multiply, then an add), for p < positions, l < block; `block` a multiple of 8.
void scale_shift_slope_block(const float* x, float* y, std::int64_t positions, std::int64_t block,
                             const float* scale, const float* shift, const float* slope);

// Whether the engine's own kernels written with AVX2 and FMA intrinsics may run: this CPU has
// both, and set_avx2_fma_kernels has not turned them off. Otherwise each falls back to its
// portable loop.
bool avx2_fma_kernels();
// For tests: false runs the portable loops on any CPU (true again restores the default).
void set_avx2_fma_kernels(bool enabled);
// Whether oneDNN runs its AVX-512 kernels: the CPU has AVX-512 and ONEDNN_MAX_CPU_ISA does not
// hold oneDNN below it.
bool onednn_runs_avx512();
// Whether the kernels written with AVX-512F intrinsics may run: this CPU has it, oneDNN runs its
// AVX-512 kernels (not capped by ONEDNN_MAX_CPU_ISA), the AVX2 and FMA ones may run, and
// set_avx512_kernels has not turned them off. The thin rows, the up-convolution by hand and tanh
// give the same bytes as their AVX2 and FMA twins; the doubling transposed convolution, the
// one-channel stem and its weight gradient stand in for oneDNN's primitives or the AVX2 loops,
// with their own (fixed) order of sums.
bool avx512_kernels();
// For tests: false runs the AVX2 and FMA twins or oneDNN instead (true again restores the
// default).
void set_avx512_kernels(bool enabled);

// a[i] += v[i], i < 8, each float widened to double: the AVX2 kernels' float sums added to their
// double totals.
__attribute__((target("avx2"))) inline void add_widened(double* a, __m256 v) {
  _mm256_storeu_pd(a,
                   _mm256_add_pd(_mm256_loadu_pd(a), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
  _mm256_storeu_pd(
      a + 4, _mm256_add_pd(_mm256_loadu_pd(a + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

// even[0], odd[0], even[1], odd[1], ... into dst: 2 * columns values (columns at most 16), by two
// permutes and stores under masks (a 2-wide up-sampling's two phases along W into its row).
__attribute__((target("avx512f"))) inline void store_interleaved(float* dst, __m512 even,
                                                                 __m512 odd, std::int64_t columns) {
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i high =
      _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const std::int64_t values = 2 * columns;
  const auto first = static_cast<__mmask16>(values >= 16 ? 0xffffu : (1u << values) - 1u);
  const auto second = static_cast<__mmask16>(values <= 16 ? 0u : (1u << (values - 16)) - 1u);
  _mm512_mask_storeu_ps(dst, first, _mm512_permutex2var_ps(even, low, odd));
  _mm512_mask_storeu_ps(dst + 16, second, _mm512_permutex2var_ps(even, high, odd));
}

}  // namespace cajal::engine::detail
