#include "pipeline/structure_names.h"

#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

struct KnownStructure {
  const char* name;
  io::CodedConcept code;
  io::RgbColor color;
};

// SNOMED CT codes as in DICOM PS3.16 (CID 7166 / CID 4031); meanings as DICOM spells them.
const std::array<KnownStructure, 12> kKnown = {{
    {"Lung_L", {"44029006", "SCT", "Left lung"}, {0, 172, 230}},
    {"Lung_R", {"3341006", "SCT", "Right lung"}, {0, 128, 255}},
    {"Heart", {"80891009", "SCT", "Heart"}, {206, 42, 42}},
    {"Liver", {"10200004", "SCT", "Liver"}, {150, 75, 0}},
    {"Spleen", {"78961009", "SCT", "Spleen"}, {157, 108, 162}},
    {"Kidney_L", {"18639004", "SCT", "Left kidney"}, {212, 126, 50}},
    {"Kidney_R", {"9846003", "SCT", "Right kidney"}, {185, 102, 83}},
    {"Esophagus", {"32849002", "SCT", "Esophagus"}, {211, 171, 143}},
    {"SpinalCord", {"2748008", "SCT", "Spinal cord"}, {255, 255, 0}},
    {"Aorta", {"15825003", "SCT", "Aorta"}, {224, 97, 76}},
    {"External", {"38266002", "SCT", "Entire body"}, {0, 255, 0}},
    {"Body", {"38266002", "SCT", "Entire body"}, {0, 255, 0}},
}};

// 20 distinct colours (Kelly's list without white, black and greys), indexed by label.
const std::array<io::RgbColor, 20> kPalette = {{
    {230, 25, 75},   {60, 180, 75},   {255, 225, 25},  {0, 130, 200},   {245, 130, 48},
    {145, 30, 180},  {70, 240, 240},  {240, 50, 230},  {210, 245, 60},  {250, 190, 212},
    {0, 128, 128},   {220, 190, 255}, {170, 110, 40},  {255, 250, 200}, {128, 0, 0},
    {170, 255, 195}, {128, 128, 0},   {255, 215, 180}, {0, 0, 128},     {255, 105, 180},
}};

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    return {};
  }
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

int parse_label(const std::string& text, const std::string& where) {
  std::size_t used = 0;
  int label = 0;
  try {
    label = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || label <= 0) {
    throw Error("label names " + where, "a label value > 0", "'" + text + "'");
  }
  return label;
}

// "N=Name" or, when `allow_space`, "N Name [...]".
LabelName parse_entry(const std::string& entry, bool allow_space, const std::string& where) {
  const auto equals = entry.find('=');
  if (equals != std::string::npos) {
    return {parse_label(trim(entry.substr(0, equals)), where), trim(entry.substr(equals + 1))};
  }
  if (allow_space) {
    std::istringstream fields(entry);
    std::string label;
    std::string name;
    fields >> label >> name;
    return {parse_label(label, where), name};
  }
  throw Error("label names " + where, "N=Name", "'" + entry + "'");
}

void check_names(const std::vector<LabelName>& names, const std::string& spec) {
  if (names.empty()) {
    throw Error("label names '" + spec + "'", "at least one N=Name", "none");
  }
  std::set<int> labels;
  std::set<std::string> seen;
  for (const LabelName& entry : names) {
    if (entry.name.empty() || entry.name.size() > 64 ||
        entry.name.find('\\') != std::string::npos) {
      throw Error("name of label " + std::to_string(entry.label),
                  "1 to 64 characters without a backslash", "'" + entry.name + "'");
    }
    if (!labels.insert(entry.label).second) {
      throw Error("label names '" + spec + "'", "each label once",
                  "label " + std::to_string(entry.label) + " twice");
    }
    if (!seen.insert(entry.name).second) {
      throw Error("label names '" + spec + "'", "each name once", "'" + entry.name + "' twice");
    }
  }
}

}  // namespace

std::vector<LabelName> parse_label_names(const std::string& spec) {
  std::vector<LabelName> names;
  std::ifstream file(spec);
  if (file) {
    std::string line;
    int line_number = 0;
    while (std::getline(file, line)) {
      ++line_number;
      line = trim(line);
      if (line.empty() || line.front() == '#') {
        continue;
      }
      names.push_back(
          parse_entry(line, true, "file '" + spec + "' line " + std::to_string(line_number)));
    }
  } else if (spec.find('=') != std::string::npos) {
    std::istringstream entries(spec);
    std::string entry;
    while (std::getline(entries, entry, ',')) {
      if (!trim(entry).empty()) {
        names.push_back(parse_entry(trim(entry), false, "'" + spec + "'"));
      }
    }
  } else {
    throw Error("label names '" + spec + "'", "a readable file or N=Name,N=Name,...", "neither");
  }
  check_names(names, spec);
  return names;
}

std::optional<io::CodedConcept> anatomy_code(const std::string& name) {
  for (const KnownStructure& known : kKnown) {
    if (name == known.name) {
      return known.code;
    }
  }
  return std::nullopt;
}

std::vector<io::RgbColor> structure_colors() {
  std::vector<io::RgbColor> colors;
  for (const KnownStructure& known : kKnown) {
    colors.push_back(known.color);
  }
  colors.insert(colors.end(), kPalette.begin(), kPalette.end());
  return colors;
}

io::RgbColor structure_color(const std::string& name, int label) {
  for (const KnownStructure& known : kKnown) {
    if (name == known.name) {
      return known.color;
    }
  }
  return kPalette[static_cast<std::size_t>(label - 1) % kPalette.size()];
}

}  // namespace cajal::pipeline
