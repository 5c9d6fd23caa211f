// Exact Euclidean distance transform on a voxel grid with anisotropic spacing, in mm.
#pragma once

#include <cstdint>
#include <vector>

#include "core/geometry.h"

namespace cajal::pipeline {

// For every voxel of a grid of `size` (voxel (i, j, k) at i + size_i * (j + size_j * k)), the
// squared distance in mm² from its centre to the centre of the nearest voxel where `feature` is
// non-zero; +infinity everywhere when no voxel is. Exact (Felzenszwalb and Huttenlocher's lower
// envelope of parabolas, one pass per axis), with spacing[c] mm between voxel centres along c.
std::vector<double> squared_distance_transform(const std::vector<std::uint8_t>& feature,
                                               const core::Index3& size, const core::Vec3& spacing);

}  // namespace cajal::pipeline
