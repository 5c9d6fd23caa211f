#include "engine/train/exp_log.h"

#include <bit>
#include <cstring>

namespace cajal::engine::train::detail {
namespace {

using Double8 = double __attribute__((vector_size(64)));
using Int8 = std::int64_t __attribute__((vector_size(64)));

constexpr double kShift = 0x1.8p52;  // x + kShift - kShift rounds x to an integer
constexpr std::int64_t kShiftBits = std::bit_cast<std::int64_t>(kShift);
constexpr double kLn2Hi = 0x1.62e42feep-1;  // fdlibm's ln2_hi: k * kLn2Hi exact for |k| < 2^20
constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;  // ln 2 - kLn2Hi

// Each a step the same on every clone: the vector types' operators are element by element.
[[gnu::always_inline]] inline void exp8(const Double8& x, Double8& y) {
  constexpr double kLog2e = 0x1.71547652b82fep0;
  const Double8 floor = x < -708.0 ? Double8{} - 708.0 : x;
  // k = round(x / ln 2), kept as the low bits of t; r = x - k ln 2 in [-ln 2 / 2, ln 2 / 2].
  const Double8 t = floor * kLog2e + kShift;
  const Double8 k = t - kShift;
  // fdlibm's e_exp.c: hi - lo = r = x - k ln 2 in [-ln 2 / 2, ln 2 / 2], exp(r) = 1 - ((lo -
  // r c / (2 - c)) - hi) with c = r - r^2 P(r^2), P its minimax polynomial of degree 4.
  constexpr double kP1 = 1.66666666666666019037e-01;
  constexpr double kP2 = -2.77777777770155933842e-03;
  constexpr double kP3 = 6.61375632143793436117e-05;
  constexpr double kP4 = -1.65339022054652515390e-06;
  constexpr double kP5 = 4.13813679705723846039e-08;
  const Double8 hi = floor - k * kLn2Hi;
  const Double8 lo = k * kLn2Lo;
  const Double8 r = hi - lo;
  const Double8 r2 = r * r;
  const Double8 c = r - r2 * (kP1 + r2 * (kP2 + r2 * (kP3 + r2 * (kP4 + r2 * kP5))));
  const Double8 p = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  // 2^k from its exponent bits; k >= -1021 after the floor, so a normal double.
  const Int8 two_k = (__builtin_bit_cast(Int8, t) - kShiftBits + 1023) << 52;
  const Double8 e = p * __builtin_bit_cast(Double8, two_k);
  y = x < -708.0 ? Double8{} : e;
}

[[gnu::always_inline]] inline void log8(const Double8& x, Double8& y) {
  constexpr double kSqrt2 = 0x1.6a09e667f3bcdp0;
  constexpr double kLg1 = 6.666666666666735130e-01;
  constexpr double kLg2 = 3.999999999940941908e-01;
  constexpr double kLg3 = 2.857142874366239149e-01;
  constexpr double kLg4 = 2.222219843214978396e-01;
  constexpr double kLg5 = 1.818357216161805012e-01;
  constexpr double kLg6 = 1.531383769920937332e-01;
  constexpr double kLg7 = 1.479819860511658591e-01;
  // x = 2^k m, m in [1, 2), then in [sqrt(2) / 2, sqrt(2)).
  const Int8 bits = __builtin_bit_cast(Int8, x);
  Int8 k = (bits >> 52) - 1023;
  const Int8 one_m = (bits & 0x000fffffffffffff) | 0x3ff0000000000000;
  Double8 m = __builtin_bit_cast(Double8, one_m);
  const Int8 big = m > kSqrt2;
  m = big ? m * 0.5 : m;
  k = k - big;  // big is -1 where true
  const Double8 dk = __builtin_bit_cast(Double8, k + kShiftBits) - kShift;
  // fdlibm: log(m) = f - (hfsq - s (hfsq + R(s^2))), f = m - 1, s = f / (2 + f).
  const Double8 f = m - 1.0;
  const Double8 s = f / (2.0 + f);
  const Double8 z = s * s;
  const Double8 w = z * z;
  const Double8 t1 = w * (kLg2 + w * (kLg4 + w * kLg6));
  const Double8 t2 = z * (kLg1 + w * (kLg3 + w * (kLg5 + w * kLg7)));
  const Double8 r = t2 + t1;
  const Double8 hfsq = 0.5 * f * f;
  const Double8 l = dk * kLn2Hi - ((hfsq - (s * (hfsq + r) + dk * kLn2Lo)) - f);
  y = x < __builtin_inf() ? l : x;  // infinity and NaN: themselves
}

// The last count % 8 values go through one vector filled with `fill`.
template <void (*Kernel)(const Double8&, Double8&)>
[[gnu::always_inline]] inline void apply8(const double* in, double* out, std::int64_t count,
                                          double fill) {
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    Double8 x;
    std::memcpy(&x, in + i, sizeof x);
    Double8 y;
    Kernel(x, y);
    std::memcpy(out + i, &y, sizeof y);
  }
  if (i < count) {
    const auto rest = static_cast<std::size_t>(count - i);
    Double8 x = Double8{} + fill;
    std::memcpy(&x, in + i, rest * sizeof(double));
    Double8 y;
    Kernel(x, y);
    std::memcpy(out + i, &y, rest * sizeof(double));
  }
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void exp_nonpositive(
    const double* in, double* out, std::int64_t count) {
  apply8<exp8>(in, out, count, 0.0);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void log_positive(const double* in,
                                                                               double* out,
                                                                               std::int64_t count) {
  apply8<log8>(in, out, count, 1.0);
}

}  // namespace cajal::engine::train::detail
