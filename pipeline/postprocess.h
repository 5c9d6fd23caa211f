// Postprocessing of a label map per label, as the model's run configuration says: keep the
// largest connected component, fill holes, drop components below a volume in mm3.
//
// Connectivity: foreground components are 26-connected (voxels sharing a face, edge or corner),
// so a thin oblique structure stays one piece; background components (holes) are then
// 6-connected, the complementary connectivity, so a hole's wall never leaks through a diagonal
// gap the foreground counts as closed. Holes are filled in 3D: a background component of a label's
// mask that does not touch the volume border becomes that label (only where the voxel is
// background 0 in the label map, never overwriting another label).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "models/model_spec.h"

namespace cajal::pipeline {

struct PostprocessReport {
  nlohmann::json details;  // per label: components found, removed, voxels removed and filled
};

// Applies the per-label rules of the model's run configuration (largest component, fill holes,
// minimum volume in mm3) in place. Order per label: drop small components, keep the largest,
// fill holes. Labels are processed in the order of RunConfig::labels.
PostprocessReport postprocess_labels(core::Volume& labels, const models::RunConfig& run);

enum class Connectivity { face6, full26 };

struct Components {
  std::vector<std::int32_t> id;      // per voxel: 0 outside the mask, else 1..count
  std::vector<std::int64_t> sizes;   // voxels of component c at sizes[c - 1]
  std::vector<bool> touches_border;  // component c at [c - 1]
};
// Connected components of the voxels where mask != 0 (mask indexed as Volume pixels).
Components label_components(const std::vector<std::uint8_t>& mask, const core::Index3& size,
                            Connectivity connectivity);

// The largest connected component of the voxels where mask != 0: its voxel count and inclusive
// index box. Ties go to the component whose first voxel (in pixel order) comes first, as
// label_components numbers them.
struct ComponentBox {
  std::int64_t voxels = 0;
  core::Index3 low{};
  core::Index3 high{};
};
// The same answer as label_components and a scan of its ids, holding no id per voxel (memory
// grows with the runs of mask voxels along x). Nothing when the mask is empty.
std::optional<ComponentBox> largest_component_box(const std::vector<std::uint8_t>& mask,
                                                  const core::Index3& size,
                                                  Connectivity connectivity);
// The same for the voxels whose pixel is above `threshold` (a body above an HU level), with no
// mask of the whole grid either.
std::optional<ComponentBox> largest_component_box_above(const std::vector<float>& pixels,
                                                        float threshold, const core::Index3& size,
                                                        Connectivity connectivity);

}  // namespace cajal::pipeline
