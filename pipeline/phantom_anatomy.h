// The phantom's anatomy: a list of structures in painting order (later ones cover earlier ones),
// each a shape in physical millimetres (LPS) with its HU and label. Internal to pipeline/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/geometry.h"
#include "pipeline/phantom_shapes.h"

namespace cajal::pipeline::phantom {

// Label values written in labels.nii.gz; names follow TG-263.
enum LabelValue : int {
  label_background = 0,
  label_external = 1,
  label_lung_l = 2,
  label_lung_r = 3,
  label_heart = 4,
  label_liver = 5,
  label_spleen = 6,
  label_kidney_l = 7,
  label_kidney_r = 8,
  label_esophagus = 9,
  label_spinal_cord = 10,
  label_aorta = 11,
};
// A structure with this label changes the image but keeps the label beneath it (vessels in the
// lungs, marrow inside bone).
constexpr int inherit_label = -1;

struct Structure {
  std::string name;
  ShapePtr shape;
  double hu = 0.0;
  int label = inherit_label;
};

struct Anatomy {
  std::vector<Structure> structures;  // in painting order
};

// A torso placed in the field of view of `grid` (identity direction, LPS), with sizes,
// positions and HU drawn from `seed`. The anatomy is scaled down to fit small fields of view.
// Lesions (`cajal phantom --lesions`) are appended afterwards by add_lesions (phantom_lesions.h).
Anatomy make_anatomy(const core::Geometry& grid, std::uint64_t seed);

}  // namespace cajal::pipeline::phantom
