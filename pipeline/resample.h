// Resampling between two grids that share a direction (axis-aligned with each other): trilinear
// for images, nearest neighbour for labels. Both map each output voxel centre to a continuous
// index of the input (per axis, since the directions agree) and clamp at the borders.
#pragma once

#include <algorithm>

#include "core/volume.h"

namespace cajal::pipeline {

// The grid of `geometry` with `spacing` (i, j, k): size max(1, round(size * old / new)) per axis,
// same direction, centred on the same field of view.
core::Geometry resampled_grid(const core::Geometry& geometry, const core::Vec3& spacing);

// Trilinear interpolation of `volume` at the voxel centres of `grid`; outside the input the
// nearest border value is used. Throws Error when the directions differ. Keeps the pixel type.
core::Volume resample_linear(const core::Volume& volume, const core::Geometry& grid);

// A map of each input value before it is interpolated: clamped to [low, high] when `clip`, then
// (x - mean) / scale computed in double and rounded to float (preprocessing's CT normalisation,
// done on the fly).
struct ValueMap {
  bool clip = false;
  float low = 0;
  float high = 0;
  double mean = 0;
  double scale = 1;
  float operator()(float x) const {
    if (clip) {
      x = std::clamp(x, low, high);
    }
    return static_cast<float>((x - mean) / scale);
  }
};
// resample_linear of the box of `volume` that starts at voxel `begin` and whose grid is `box` (a
// crop, not copied out), each value passed through `map` first: the same pixels as cropping,
// mapping every value and resampling, without the two full-size intermediate volumes.
core::Volume resample_linear(const core::Volume& volume, const core::Index3& begin,
                             const core::Geometry& box, const core::Geometry& grid,
                             const ValueMap& map);

// Nearest-neighbour sampling (for label maps): each voxel of `grid` takes the value of the input
// voxel whose centre is nearest (ties toward the higher index, as ITK rounds); clamped at
// the borders.
core::Volume resample_nearest(const core::Volume& volume, const core::Geometry& grid);

// Label maps onto a finer grid without the staircase of nearest neighbour: each voxel of `grid`
// takes the label with the largest trilinear weight among the 8 input voxels around its centre,
// as if every label's 0/1 mask were interpolated linearly and the largest taken (ties: the lower
// label). Where all 8 agree this is nearest neighbour's answer; borders are clamped. Keeps the
// pixel type.
core::Volume resample_labels_linear(const core::Volume& volume, const core::Geometry& grid);
// The same labels written into `out`, pixels of a larger grid of `out_size`, as the box that
// starts at `out_begin` (the rest of `out` untouched): a crop undone without a copy.
void resample_labels_linear_into(const core::Volume& volume, const core::Geometry& grid,
                                 std::vector<float>& out, const core::Index3& out_size,
                                 const core::Index3& out_begin);

}  // namespace cajal::pipeline
