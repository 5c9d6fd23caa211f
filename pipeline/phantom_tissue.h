// Tissue classes of the phantom and their mean attenuation in HU (before per-case jitter and
// scanner noise). docs/phantom.md lists the same table.
#pragma once

namespace cajal::pipeline::phantom {

enum class Tissue {
  air,
  lung,
  fat,
  visceral_fat,
  muscle,
  soft_tissue,
  blood,
  heart,
  liver,
  spleen,
  kidney,
  stomach,
  bowel,
  disc,
  csf,
  spinal_cord,
  marrow,
  cortical_bone,
};

constexpr double tissue_hu(Tissue tissue) {
  switch (tissue) {
    case Tissue::air:
      return -1000;
    case Tissue::lung:
      return -850;
    case Tissue::fat:
      return -100;
    case Tissue::visceral_fat:
      return -85;
    case Tissue::muscle:
      return 45;
    case Tissue::soft_tissue:
      return 40;
    case Tissue::blood:
      return 40;
    case Tissue::heart:
      return 42;
    case Tissue::liver:
      return 60;
    case Tissue::spleen:
      return 50;
    case Tissue::kidney:
      return 35;
    case Tissue::stomach:
      return 20;
    case Tissue::bowel:
      return 15;
    case Tissue::disc:
      return 80;
    case Tissue::csf:
      return 10;
    case Tissue::spinal_cord:
      return 35;
    case Tissue::marrow:
      return 250;
    case Tissue::cortical_bone:
      return 850;
  }
  return 0;
}

}  // namespace cajal::pipeline::phantom
