// Names, colours and codes of the structures cajal exports: the `--names` syntax, TG-263 names
// with their SNOMED CT codes and colours, and a stable palette for everything else.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/structure_set.h"

namespace cajal::pipeline {

// One label of a label map and the structure it stands for.
struct LabelName {
  int label = 0;     // voxel value, > 0
  std::string name;  // ROI Name / Segment Label
};

// Parses `spec`: either inline "N=Name,N=Name,..." or the path of a file with one label a line,
// "N Name [anything]" (the AAL/ITK-SNAP style) or "N=Name"; blank lines and lines starting with
// '#' are ignored. Throws Error on a bad line, a repeated label or name, a label <= 0, or a name
// that DICOM cannot hold (empty, longer than 64 characters, or with a backslash).
std::vector<LabelName> parse_label_names(const std::string& spec);

// SNOMED CT code of a TG-263 structure name (Lung_L, Lung_R, Heart, Liver, Spleen, Kidney_L,
// Kidney_R, Esophagus, SpinalCord, Aorta, External, Body); nothing for other names.
std::optional<io::CodedConcept> anatomy_code(const std::string& name);

// The display colour of a structure: a fixed colour for the TG-263 names above, otherwise one of
// a fixed palette chosen by the label value, so the same label always gets the same colour.
io::RgbColor structure_color(const std::string& name, int label);
// Every colour structure_color gives: the fixed colours, then the palette's.
std::vector<io::RgbColor> structure_colors();

}  // namespace cajal::pipeline
