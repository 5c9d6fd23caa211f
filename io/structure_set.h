// Structures to write as DICOM RT Structure Set and Segmentation objects: binary masks on the
// grid of a scanned DICOM series, with their names, colours and codes. See
// docs/dicom-export.md for the conventions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cajal::io {

// A coded concept (DICOM Code Sequence Macro): CodeValue, CodingSchemeDesignator, CodeMeaning.
struct CodedConcept {
  std::string value;
  std::string scheme;
  std::string meaning;
};

using RgbColor = std::array<std::uint8_t, 3>;

struct ExportStructure {
  int number = 0;    // ROI Number and Segment Number: 1, 2, ... in the order given
  std::string name;  // ROI Name and Segment Label
  RgbColor color{255, 0, 0};
  // SNOMED CT code of the anatomy when a standard one exists; otherwise the SEG gets a code of
  // cajal's private scheme (99CAJAL) whose meaning is the name.
  std::optional<CodedConcept> anatomy;
  // Voxel (i, j, k) of the series geometry at mask[i + size_i * (j + size_j * k)], k in the
  // series' slice order; non-zero is inside. Must not be empty (callers leave empty structures
  // out and report them).
  std::vector<std::uint8_t> mask;
};

// What both writers need besides the structures.
struct DicomWriteInfo {
  std::string uid_root = "2.25";  // organisation root for new UIDs; "2.25" = UUID-derived
  std::string label = "cajal";    // StructureSetLabel / ContentLabel (at most 16 characters)
  std::string series_description = "cajal segmentation";
  std::string series_number = "901";
  std::string software_version;  // SoftwareVersions
  std::string date;              // YYYYMMDD; today when empty
  std::string time;              // HHMMSS; now when empty
};

// A new UID under `root`: for "2.25", "2.25." and the decimal value of a random 128-bit UUID
// (ISO/IEC 9834-8); for another root, ROOT.MICROSECONDS.RANDOM. Throws Error when the root is
// not a valid UID prefix or leaves no room (64 characters in all).
std::string make_dicom_uid(const std::string& root);

// Checks a UID root: digits and dots, no empty or zero-led component, at most 40 characters.
void validate_uid_root(const std::string& root);

}  // namespace cajal::io
