#include "engine/layers/common.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <dnnl.hpp>

#include "core/error.h"
#include "core/select.h"

namespace cajal::engine::detail {
namespace {

// One value or sixteen (T float or a vector of 16): the same operations in the same order, so a
// value gives the same bits in either. No fused multiply-add (the AVX2 clone has none). By
// reference, inlined into each clone of tanh_span: no vector crosses a call.
template <typename T>
[[gnu::always_inline]] inline void tanh_rational(const T& x, T& y) {
  constexpr float kClamp = 7.90531110763549805f;
  const T magnitude = x < 0.0f ? -x : x;
  T c = x > kClamp ? T{} + kClamp : x;  // comparisons with NaN are false: NaN passes through
  c = c < -kClamp ? T{} - kClamp : c;
  const T x2 = c * c;
  T p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * c;
  T q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  y = magnitude < 0.0004f ? x : p / q;
}

using Float16 = float __attribute__((vector_size(64)));

// 16 values at a time: one AVX-512 vector, two AVX2 ones, four SSE ones. AVX-512F implies no
// fused multiply-add either, so each clone gives the same bytes.
__attribute__((target_clones("avx512f", "avx2", "default"))) void tanh_span(const float* in,
                                                                            float* out,
                                                                            std::int64_t count) {
  std::int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    Float16 x;
    std::memcpy(&x, in + i, sizeof x);
    Float16 y;
    tanh_rational(x, y);
    std::memcpy(out + i, &y, sizeof y);
  }
  for (; i < count; ++i) {
    float y = 0.0f;
    tanh_rational(in[i], y);
    out[i] = y;
  }
}

using Double4 = double __attribute__((vector_size(32)));
using Float4 = float __attribute__((vector_size(16)));

__attribute__((target_clones("avx512f", "avx2", "default"))) void add_moments_clone(
    const float* x, std::int64_t count, double* sum, double* squares) {
  Double4 s;
  Double4 q;
  std::memcpy(&s, sum, sizeof s);
  std::memcpy(&q, squares, sizeof q);
  std::int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    Float4 v;
    std::memcpy(&v, x + i, sizeof v);
    const Double4 d = __builtin_convertvector(v, Double4);
    s += d;
    q += d * d;
  }
  std::memcpy(sum, &s, sizeof s);
  std::memcpy(squares, &q, sizeof q);
  for (; i < count; ++i) {
    sum[0] += x[i];
    squares[0] += static_cast<double>(x[i]) * x[i];
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void scale_shift_slope_clone(
    const float* x, float* y, std::int64_t count, float scale, float shift, float slope) {
  for (std::int64_t i = 0; i < count; ++i) {
    const float v = x[i] * scale + shift;
    y[i] = core::select_bits(v > 0.0f, v, slope * v);
  }
}

using Float8 = float __attribute__((vector_size(32)));
using Double8 = double __attribute__((vector_size(64)));

// add_block_moments for channels [l, l + 8 * kTile) of each position: the sums in registers, each
// lane's in position order (as every clone adds them).
template <int kTile>
[[gnu::always_inline]] inline void add_tile_moments(const float* x, std::int64_t positions,
                                                    std::int64_t block, double* sum,
                                                    double* squares) {
  Double8 s[kTile];
  Double8 q[kTile];
  std::memcpy(&s, sum, sizeof s);
  std::memcpy(&q, squares, sizeof q);
  for (std::int64_t p = 0; p < positions; ++p) {
    for (int t = 0; t < kTile; ++t) {
      Float8 v;
      std::memcpy(&v, x + p * block + 8 * t, sizeof v);
      const Double8 d = __builtin_convertvector(v, Double8);
      s[t] += d;
      q[t] += d * d;
    }
  }
  std::memcpy(sum, &s, sizeof s);
  std::memcpy(squares, &q, sizeof q);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void add_block_moments_clone(
    const float* x, std::int64_t positions, std::int64_t block, double* sum, double* squares) {
  std::int64_t l = 0;
  for (; l + 32 <= block; l += 32) {
    add_tile_moments<4>(x + l, positions, block, sum + l, squares + l);
  }
  for (; l < block; l += 8) {
    add_tile_moments<1>(x + l, positions, block, sum + l, squares + l);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void scale_shift_slope_block_clone(
    const float* x, float* y, std::int64_t positions, std::int64_t block, const float* scale,
    const float* shift, const float* slope) {
  for (std::int64_t p = 0; p < positions; ++p) {
    for (std::int64_t l = 0; l < block; l += 8) {
      Float8 v;
      Float8 a;
      Float8 b;
      Float8 k;
      std::memcpy(&v, x + p * block + l, sizeof v);
      std::memcpy(&a, scale + l, sizeof a);
      std::memcpy(&b, shift + l, sizeof b);
      std::memcpy(&k, slope + l, sizeof k);
      v = v * a + b;
      const Float8 r = v > 0.0f ? v : k * v;
      std::memcpy(y + p * block + l, &r, sizeof r);
    }
  }
}

std::atomic<bool> avx2_fma_enabled{true};
std::atomic<bool> avx512_enabled{true};

}  // namespace

bool avx2_fma_kernels() {
  static const bool present = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return present && avx2_fma_enabled.load(std::memory_order_relaxed);
}

void set_avx2_fma_kernels(bool enabled) {
  avx2_fma_enabled.store(enabled, std::memory_order_relaxed);
}

bool onednn_runs_avx512() {
  static const bool runs = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return (isa & avx512) == avx512;
  }();
  return runs;
}

bool avx512_kernels() {
  // oneDNN's cap too (ONEDNN_MAX_CPU_ISA=AVX2 holds the engine's own kernels to AVX2 as well).
  static const bool present = __builtin_cpu_supports("avx512f") && onednn_runs_avx512();
  return present && avx512_enabled.load(std::memory_order_relaxed) && avx2_fma_kernels();
}

void set_avx512_kernels(bool enabled) {
  avx512_enabled.store(enabled, std::memory_order_relaxed);
}

void check_input_count(const Layer& layer, const std::vector<Dims>& src, std::size_t count) {
  if (count == 0 && src.size() < 2) {
    throw Error(layer.label() + ": inputs", "at least 2", std::to_string(src.size()));
  }
  if (count != 0 && src.size() != count) {
    throw Error(layer.label() + ": inputs", std::to_string(count), std::to_string(src.size()));
  }
}

void check_rank(const Layer& layer, const Dims& dims, std::size_t rank) {
  if (rank == 0 && (dims.size() == 4 || dims.size() == 5)) {
    return;
  }
  if (rank != dims.size()) {
    const std::string expected =
        rank == 0 ? "[N,C,H,W] or [N,C,D,H,W]" : std::to_string(rank) + " dims";
    throw Error(layer.label() + ": input dims", expected, to_string(dims));
  }
}

void check_channels(const Layer& layer, const Dims& dims, std::int64_t channels) {
  if (dims.size() < 2 || dims[1] != channels) {
    throw Error(layer.label() + ": input channels of " + to_string(dims), std::to_string(channels),
                dims.size() < 2 ? "none" : std::to_string(dims[1]));
  }
}

void tanh_values(const float* in, float* out, std::int64_t count) {
  tanh_span(in, out, count);
}

void add_moments(const float* x, std::int64_t count, double* sum, double* squares) {
  add_moments_clone(x, count, sum, squares);
}

void scale_shift_slope(const float* x, float* y, std::int64_t count, float scale, float shift,
                       float slope) {
  scale_shift_slope_clone(x, y, count, scale, shift, slope);
}

void add_block_moments(const float* x, std::int64_t positions, std::int64_t block, double* sum,
                       double* squares) {
  CAJAL_CHECK(block > 0 && block % 8 == 0) << "add_block_moments: block " << block;
  add_block_moments_clone(x, positions, block, sum, squares);
}

void scale_shift_slope_block(const float* x, float* y, std::int64_t positions, std::int64_t block,
                             const float* scale, const float* shift, const float* slope) {
  CAJAL_CHECK(block > 0 && block % 8 == 0) << "scale_shift_slope_block: block " << block;
  scale_shift_slope_block_clone(x, y, positions, block, scale, shift, slope);
}

void tanh_by_hand(const float* in, float* out, std::int64_t count, int threads) {
  constexpr std::int64_t kBlock = 16384;
  const std::int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) schedule(static) if (blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t begin = b * kBlock;
    tanh_span(in + begin, out + begin, std::min(kBlock, count - begin));
  }
}

}  // namespace cajal::engine::detail
