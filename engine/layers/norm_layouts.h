// Internal to engine/: batch normalisation in training on the layouts a convolution writes and
// reads (NormalizationLayer::take_layouts_in_training), by 8 channels at a time. Every sum is
// made in the order of the per-channel loops on PyTorch's layout (normalization.cpp), so either
// layout gives the same bytes.
#pragma once

#include <cstdint>

namespace cajal::engine::detail {

// Values [N, C, positions] in PyTorch's layout (block 1) or in [N, C / block, positions, block]
// (block a multiple of 8 that divides C: oneDNN's nCdhw16c or 8c, or channels last).
struct NormLayout {
  std::int64_t samples = 0;
  std::int64_t channels = 0;
  std::int64_t positions = 0;
  std::int64_t block = 1;
};

// Four lanes of sums for each of a group's 8 channels: lane p % 4 of each sample's positions
// below its last multiple of 4, the others in lane 0, samples in order (add_moments' lanes).
struct GroupSums {
  double lane[4][8] = {};
};

// The channels [8 group, 8 group + 8) of x (layout `in`): adds x and x^2 to sum and squares.
void group_moments(const float* x, const NormLayout& in, std::int64_t group, GroupSums& sum,
                   GroupSums& squares);

// The same channels at positions [first, last) of one sample: y = x * scale[k] + shift[k] (a
// multiply, then an add), with `relu` max(y, 0) as std::max gives it (NaN and -0 kept), into y
// in layout `out`. Value by value: threads that write the same block of channels take
// positions, not channels (they would share every cache line they write).
void group_normalize(const float* x, const NormLayout& in, float* y, const NormLayout& out,
                     std::int64_t group, std::int64_t sample, std::int64_t first, std::int64_t last,
                     const float* scale, const float* shift, bool relu);

// The gradient's sums of gradient_sums (normalization.cpp) for these channels: g = dy (layout
// `dl`), or with `relu` dy where x * scale + shift > 0 and 0 elsewhere; adds g and
// g * (x - mean) (the difference in float, the product in double).
void group_gradient_sums(const float* x, const NormLayout& in, const float* dy,
                         const NormLayout& dl, std::int64_t group, const float* mean,
                         const float* scale, const float* shift, bool relu, GroupSums& sum,
                         GroupSums& sum_x);

// dx = a[k] * g + (b[k] * x + c[k]) for these channels at positions [first, last) of one
// sample, g as above, into dx in layout `in`; value by value, as group_normalize.
void group_gradient(const float* x, const NormLayout& in, const float* dy, const NormLayout& dl,
                    float* dx, std::int64_t group, std::int64_t sample, std::int64_t first,
                    std::int64_t last, const float* scale, const float* shift, bool relu,
                    const float* a, const float* b, const float* c);

}  // namespace cajal::engine::detail
