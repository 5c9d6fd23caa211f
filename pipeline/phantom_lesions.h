// Lesions for `cajal phantom --lesions` (issue 6): benign and malignant tumours placed inside the
// liver, spleen, kidneys and lungs of a phantom anatomy, rendered into its CT, with their ground
// truth. docs/phantom.md describes the two classes and the ranges they are drawn from. Internal
// to pipeline/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/geometry.h"
#include "pipeline/phantom_anatomy.h"

namespace cajal::pipeline::phantom {

enum class LesionClass { benign, malignant };
const char* lesion_class_name(LesionClass lesion_class);

struct Lesion {
  int id = 0;  // 1, 2, ...: its value in lesions.nii.gz
  LesionClass lesion_class = LesionClass::benign;
  std::string organ;  // TG-263 name of the organ label
  int organ_label = 0;
  Vec3 centre{0, 0, 0};     // mm, LPS, on a voxel centre of the grid
  Vec3 semi_axes{0, 0, 0};  // mm, of the lesion's ellipsoidal body, before its yaw
  double yaw = 0;           // radians about z
  double size_mm = 0;       // longest diameter of the body (spicules not counted)
  double hu = 0;            // mean attenuation of the lesion
  double organ_hu = 0;      // of the organ around it
  std::string margin;       // "smooth", "lobulated" or "spiculated"
  bool necrotic_core = false;
  double oedema_mm = 0;  // thickness of the surrounding oedema, 0 for none
  bool touches_organ_edge = false;
  ShapePtr body;  // the lesion, clipped to the visible part of its organ: its label
};

// Appends 1 to 4 lesions, drawn from `seed`, to the end of `anatomy.structures` (painting order:
// oedema, body, texture, necrotic core; all keep the organ's label) and returns them. Lesions lie
// in `grid`'s field of view; one that finds no room in its organ is left out.
std::vector<Lesion> add_lesions(Anatomy& anatomy, const core::Geometry& grid, std::uint64_t seed);

// The lesion label map on `grid` (identity direction), voxel (i, j, k) at
// [i + size_i * (j + size_j * k)]: lesion id where the voxel centre lies in the lesion's body,
// 0 elsewhere.
std::vector<std::uint8_t> rasterise_lesions(const std::vector<Lesion>& lesions,
                                            const core::Geometry& grid);

}  // namespace cajal::pipeline::phantom
