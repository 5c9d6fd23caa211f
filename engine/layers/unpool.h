// Internal to engine/: a transposed convolution whose kernel equals its stride, by hand.
#pragma once

#include "engine/tensor.h"

namespace cajal::engine::detail {

// y = the transposed convolution of x with `weights` ([IC, OC, kernel...], PyTorch's layout) and
// `bias` (or null), kernel equal to stride on every axis, no padding, dilation or groups (a U-Net
// up-convolution into few channels): each input voxel writes its own kernel-sized block,
// y[n, oc, i * k + a] = bias[oc] + sum_ic x[n, ic, i] * w[ic, oc, a] along each axis, the input
// channels summed in order, each product rounded before it is added (any thread count and any
// CPU's kernel give the same bytes). 2D or 3D, on `threads` threads.
void unpool_convolution(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                        const Dims& kernel, int threads);

// The same into y's values in the layout [N, OC / 16, spatial..., 16] (oneDNN's nCdhw16c or
// nChw16c; OC a multiple of 16), y's dims still [N, OC, spatial...], with the same bytes: each
// input voxel's value times a tap's 16 output channels' weights, summed onto the bias over the
// input channels in order. For training, where the output is linked to a concat's blocked layout
// (Net::link_training_layouts). AVX-512F only: call only where avx512_kernels().
void unpool_convolution_blocked(const Tensor& x, const float* weights, const float* bias, Tensor& y,
                                const Dims& kernel, int threads);

}  // namespace cajal::engine::detail
