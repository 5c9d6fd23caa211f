// Rasterises a phantom anatomy onto a voxel grid: partial-volume HU, the label of each voxel's
// centre, and scanner noise. Internal to pipeline/.
#pragma once

#include <cstdint>
#include <vector>

#include "core/geometry.h"
#include "pipeline/phantom_anatomy.h"

namespace cajal::pipeline::phantom {

struct RenderOptions {
  double noise_sigma = 15.0;  // HU, Gaussian, independent per voxel
  std::uint64_t noise_seed = 0;
  int threads = 1;  // slices are rendered independently, so any count gives the same bytes
};

struct Rendered {
  // Voxel (i, j, k) at [i + size_i * (j + size_j * k)], in the grid's order.
  std::vector<std::int16_t> hu;  // clamped to [-1024, 3071]
  std::vector<std::uint8_t> labels;
};

// Renders onto `grid`, whose direction must be the identity (axis k along z): each voxel's HU
// is the structures' HU painted in order, each weighted by the fraction of the voxel it covers
// (from the signed distance at the voxel centre and the voxel's width along the surface
// normal); its label is that of the last labelled structure containing the voxel centre.
Rendered render(const Anatomy& anatomy, const core::Geometry& grid, const RenderOptions& options);

}  // namespace cajal::pipeline::phantom
