// Internal to engine/: exp and log of arrays of doubles for the losses' softmax, by hand: glibc's
// exp and log, one value per call, took 3 of the 4 ms that cross-entropy spent on
// bench/train's 3D U-Net (2 x 64^3 logits, 2 threads). Plain multiplies, adds and divides in a
// fixed order, in vectors of 8 (one AVX-512 vector, two AVX2 ones, four SSE2 ones, compiled with
// -ffp-contract=off), so every CPU, clone and thread count gives the same bytes.
#pragma once

#include <cstdint>

namespace cajal::engine::train::detail {

// out[i] = exp(in[i]) for in[i] <= 0, the softmax's x - max(x): exp(0) is exactly 1, every other
// value within 1 unit in the last place (fdlibm's e_exp.c: x = k ln 2 + r, |r| <= ln(2) / 2, and
// its rational form of exp(r)); 0 below -708 (where exp falls under the smallest normal double);
// NaN stays NaN. `out` may be `in`.
void exp_nonpositive(const double* in, double* out, std::int64_t count);

// out[i] = log(in[i]) for positive normal in[i] (the softmax's sum of exps, at least 1): log(1)
// is exactly 0, every other value within 1 unit in the last place (fdlibm's e_log.c: the mantissa
// taken to [sqrt(2) / 2, sqrt(2)), its minimax series in s = f / (2 + f)); infinity and NaN stay
// themselves. `out` may be `in`.
void log_positive(const double* in, double* out, std::int64_t count);

}  // namespace cajal::engine::train::detail
