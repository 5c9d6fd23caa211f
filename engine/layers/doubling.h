// Internal to engine/: a transposed convolution that doubles every size (MONAI's up-sampling)
// into few channels, by hand with AVX-512.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace cajal::engine::detail {

// The most output channels doubling_convolution takes (two at a time per pass over the input).
constexpr std::int64_t kDoublingMaxOutChannels = 8;

// y [N, OC, 2D, 2H, 2W] = the transposed convolution of x [N, IC, D, H, W] (2D: no D) with
// `weights` ([IC, OC, 3, 3(, 3)], PyTorch's layout) and `bias` (or null): stride 2, padding 1,
// output padding 1, no dilation or groups, OC at most kDoublingMaxOutChannels. Along each axis
// output sample 2m reads input sample m with tap 1, and 2m + 1 reads m with tap 2 and m + 1 (none
// past the end) with tap 0; for 16 input columns at a time every phase's sums are kept in
// registers and the input channels are summed in order with fused multiply-adds, so any thread
// count gives the same bytes. Call only where avx512_kernels() (the AVX-512F kernel; elsewhere the
// layer runs oneDNN's sub-pixel convolutions).
void doubling_convolution(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                          int threads);

}  // namespace cajal::engine::detail
