// The weight gradient of a 3D convolution whose input and output gradient are blocked by 8
// channels (oneDNN's nCdhw8c), summed by the engine's own AVX2 loop: oneDNN v2.6 has no AVX2
// kernel for it and falls back to gemm (see convolution.cpp).
#pragma once

#include <array>
#include <cstdint>

namespace cajal::engine::detail {

struct BlockedWeightGradient {
  std::int64_t batch = 0;
  std::int64_t in_channels = 0;          // a multiple of 8
  std::int64_t out_channels = 0;         // a multiple of 8
  std::array<std::int64_t, 3> in{};      // D H W of the input
  std::array<std::int64_t, 3> out{};     // D H W of the output
  std::array<std::int64_t, 3> kernel{};  // kernel[2] == 3
  std::array<std::int64_t, 3> pad{};     // stride and dilation 1
};

// Whether blocked_weight_gradient takes a convolution of these parameters: 3D, groups 1, stride
// and dilation 1, kernel 3 along W, channels in multiples of 8, on a CPU with AVX2 and FMA.
bool fits_blocked_weight_gradient(std::int64_t in_channels, std::int64_t out_channels,
                                  std::int64_t groups, const std::array<std::int64_t, 3>& kernel,
                                  const std::array<std::int64_t, 3>& stride,
                                  const std::array<std::int64_t, 3>& dilation);

// Adds to dw (PyTorch's [OC, IC, KD, KH, KW]) the gradient from x and dy, both nCdhw8c, and to
// db (when not null) the sum of dy per output channel. Sums in double in a fixed order: the same
// threads give the same bytes.
void blocked_weight_gradient(const BlockedWeightGradient& g, const float* x, const float* dy,
                             float* dw, float* db, int threads);

}  // namespace cajal::engine::detail
