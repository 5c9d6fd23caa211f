// Internal to engine/: a convolution of one input channel into 16 (a U-Net's first layer on a
// CT or MR image), by hand with AVX-512, in the channels-last layout.
#pragma once

#include <cstdint>

#include "engine/layers/convolution.h"
#include "engine/tensor.h"

namespace cajal::engine::detail {

// Whether stem_convolution takes a convolution of these parameters: one input channel, 16
// output channels, no groups or dilation, a kernel 3 wide, stride 1 or 2 along W, 2D or 3D.
bool stem_takes(const ConvolutionParams& p);

// y = the convolution of x (dims `x_dims`, [N, 1, (D,) H, W]; one channel, so any dense layout)
// with `weights` ([16, 1, K...], PyTorch's layout) and `bias` (or null), plus `residual` (or null;
// laid out as y, and may be y itself: a fused residual add), written channels-last (dims `y_dims`
// [N, 16, (D,) H, W] stored as N, (D,) H, W, 16). Each output voxel's 16 channels are one vector:
// bias and residual added first, then its taps multiplied and added in order (kernel depth,
// height, width), so any thread count gives the same bytes. Call only where avx512_kernels().
void stem_convolution(const float* x, const Dims& x_dims, const float* weights, const float* bias,
                      const float* residual, float* y, const Dims& y_dims,
                      const ConvolutionParams& p, int threads);

}  // namespace cajal::engine::detail
