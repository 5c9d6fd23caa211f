// report.json of `cajal segment`: per-structure statistics of a label map on the input's grid,
// fingerprints of the input pixels and model weights, and provenance. Schema: docs/segment.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "io/dicom_series.h"
#include "pipeline/structure_names.h"

namespace cajal::pipeline {

inline constexpr const char* kSegmentReportSchema = "cajal.segment.report/1";

// One named structure of the label map, measured on the input's own grid.
struct StructureStats {
  int label = 0;
  std::string name;
  std::int64_t voxel_count = 0;
  double volume_ml = 0;
  // The remaining fields are meaningful only when voxel_count > 0.
  core::Vec3 centroid_mm{};  // mean of the voxel centres, LPS
  core::Index3 bbox_min{};   // inclusive voxel index range
  core::Index3 bbox_max{};
  core::Vec3 bbox_min_mm{};  // LPS axis-aligned box around the corner voxel centres of the
  core::Vec3 bbox_max_mm{};  // index box
  double mean = 0;           // input intensity inside the structure
  double std = 0;            // population standard deviation
  double min = 0;
  double max = 0;
  bool touches_edge = false;  // a voxel lies on the first or last index of some axis
};

// Measures every structure of `names` (in that order; labels absent from the map have zero
// count). `labels` holds integer label values on exactly the grid of `image`. Throws Error when
// the grids differ.
std::vector<StructureStats> measure_structures(const core::Volume& image,
                                               const core::Volume& labels,
                                               const std::vector<LabelName>& names);

// SHA-256 of the voxel values converted to volume.pixel_type, little-endian, i fastest (the
// bytes of a NIfTI file's image data when it holds the same voxels unscaled).
std::string pixel_data_sha256(const core::Volume& volume);

struct ModelProvenance {
  std::string path;
  std::string name;  // from card.json
  std::string version;
  std::string weights_sha256;  // of weights.safetensors
};

struct SegmentReport {
  std::string input_path;
  std::string input_kind;  // io::to_string(InputKind)
  core::Geometry geometry;
  core::PixelType pixel_type = core::PixelType::float32;
  core::IntensityRange intensity_range;
  std::string pixel_sha256;
  std::optional<io::DicomSeriesAttributes> dicom;  // when the input is a DICOM series
  ModelProvenance model;
  std::string cajal_version;
  int threads = 0;
  std::vector<std::pair<std::string, double>> timings_seconds;  // stage -> seconds, in order
  nlohmann::json preprocessing;                                 // b1's records, as given
  nlohmann::json inference;
  nlohmann::json postprocessing;
  nlohmann::json dicom_export;  // null unless --rtstruct / --dicom-seg
  std::vector<std::string> warnings;
  std::vector<std::string> outputs;  // files written, relative to the case folder
  std::vector<StructureStats> structures;
};

nlohmann::json to_json(const StructureStats& stats);
nlohmann::json to_json(const SegmentReport& report);

}  // namespace cajal::pipeline
