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

// The gradients of unpool_convolution from its output's gradient `diff_dst` in the layout
// [N, OC / 16, spatial..., 16] (OC a multiple of 16), by fused multiply-adds; AVX-512F only.
// diff_src [N, IC, spatial...] (PyTorch's layout; unless null) = for each input voxel the sum of
// w[ic, oc, tap] * diff_dst over output block, tap and channel in that order; weight_grad
// [IC, OC, taps] += the sum of x * diff_dst over the input voxels in order; bias_grad [OC]
// (unless null) += the sum of diff_dst over the output voxels (by input voxel, then tap). Each
// value computed by one thread alone in that order, so any thread count gives the same bytes.
// Plane by plane, the data pass and then the weight pass, so that diff_dst is read from memory
// once.
void unpool_backward_blocked(const Tensor& x, const float* diff_dst, const float* weights,
                             Tensor* diff_src, float* weight_grad, float* bias_grad,
                             std::int64_t out_channels, const Dims& kernel, int threads);

}  // namespace cajal::engine::detail
