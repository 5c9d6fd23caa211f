// The regions `cajal classify` runs its classifier on, and the crop of one region into the
// model's input tensor. Shared with `cajal train`'s "lesions" data, so training and inference cut
// a lesion the same way. The rules (field, enlargement, margin, ids): docs/classify.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"
#include "engine/tensor.h"
#include "models/model_spec.h"

namespace cajal::pipeline {

// Where a region came from.
enum class RegionSource { whole, center, roi };
std::string to_string(RegionSource source);

struct Region {
  std::string id;
  RegionSource source = RegionSource::whole;
  core::Vec3 centre_mm{0, 0, 0};  // LPS
  // The cube of patient space that is sampled, along x (L), y (P), z (S): the model's own field
  // (patch_size x target_spacing), enlarged by one factor on all axes when the box does not fit.
  core::Vec3 field_mm{0, 0, 0};
  core::Vec3 box_mm{0, 0, 0};  // what must fit: the mask's bounding box + 2 x margin, or --size
  std::int64_t voxels = 0;     // from a mask: the component's voxel count, else 0
  double volume_ml = 0;        // from a mask
};

// The model's field in mm along x, y, z: patch_size x target_spacing (a 2D model's z: 0).
// Throws Error unless the run configuration has a patch_size and target_spacing of
// spatial_dims numbers.
core::Vec3 model_field_mm(const models::RunConfig& run);

// `box_mm` fitted into the model's field: the field itself, or the field times the smallest
// factor >= 1 that makes every axis hold the box (a 2D model: x and y only).
core::Vec3 fit_field(const core::Vec3& box_mm, const models::RunConfig& run);

// The whole image: centred on its field of view, field = its physical extent (LPS box of the
// voxel corners), so the image is resampled to the patch size.
Region whole_image_region(const core::Volume& image, const std::string& case_id);

// A box of `size_mm` (x, y, z) around `centre_mm`.
Region centre_region(const core::Vec3& centre_mm, const core::Vec3& size_mm,
                     const std::string& case_id, const models::RunConfig& run);

struct MaskRegionOptions {
  std::optional<int> label;  // each 26-connected component of this label; else each value
  double margin_mm = 5.0;    // added on each side of the bounding box
};

// Regions from a mask on the image's grid (Error naming both grids otherwise): with a label,
// `<case>/label<N>_<k>` for the k-th component in raster order of its first voxel; without,
// `<case>/lesion_<value>` per distinct non-zero value, in increasing value. Centre = the centre
// of the LPS bounding box of the voxels (voxel corners), box = that box + 2 x margin.
std::vector<Region> mask_regions(const core::Volume& image, const core::Volume& mask,
                                 const std::string& case_id, const MaskRegionOptions& options,
                                 const models::RunConfig& run);

// Throws Error naming both grids unless `mask` lies on `image`'s grid.
void check_same_grid(const core::Volume& image, const core::Volume& mask, const std::string& what);

// The region cut out of `image` into the model's input: [1, D, H, W] (3D) or [1, H, W] (2D, the
// axial slice through the centre). Trilinear sampling on a grid aligned with the LPS axes (W
// along x, H along y, D along z), patch_size points over field_mm, centred on the region; the
// nearest border value outside the image; normalised as run.normalization says (zscore and
// percentile over the crop).
engine::Tensor crop_region(const core::Volume& image, const Region& region,
                           const models::RunConfig& run);

}  // namespace cajal::pipeline
