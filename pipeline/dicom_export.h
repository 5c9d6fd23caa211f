// Label maps to DICOM RT Structure Set and Segmentation objects that land in the study of the
// series they were drawn on. Used by `cajal labels-to-dicom` and, with the segmentation's own
// label map, by `cajal segment --rtstruct --dicom-seg` (issue 5).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "io/dicom_series.h"
#include "io/structure_set.h"
#include "pipeline/structure_names.h"

namespace cajal::pipeline {

struct DicomExportOptions {
  std::optional<std::filesystem::path> rtstruct_path;  // write an RT Structure Set there
  std::optional<std::filesystem::path> seg_path;       // write a DICOM SEG there
  io::DicomWriteInfo info;                             // UID root, label, date/time, ...
};

// One structure that was written.
struct ExportedStructure {
  int label = 0;
  std::string name;
  io::RgbColor color{};
  std::optional<io::CodedConcept> anatomy;
  std::int64_t voxel_count = 0;
  double volume_ml = 0;
  int rtstruct_roi_number = 0;  // 0 when no RTSTRUCT was written
  std::size_t contour_count = 0;
  int seg_segment_number = 0;  // 0 when no SEG was written
  std::size_t seg_frame_count = 0;
  // SOP Instance UIDs of the reference slices the structure lies on, in slice order.
  std::vector<std::string> slice_uids;
};

struct DicomExportReport {
  std::string reference_series_uid;
  std::string study_uid;
  std::optional<std::filesystem::path> rtstruct_path;
  std::string rtstruct_sop_instance_uid;
  std::optional<std::filesystem::path> seg_path;
  std::string seg_sop_instance_uid;
  std::vector<ExportedStructure> structures;
  // Named labels with no voxel: left out of both files, with a warning.
  std::vector<LabelName> empty;
  // Label values present in the map that no name was given for (not exported).
  std::vector<int> unnamed_labels;
};

// The label map on the series' grid: `labels` must hold the same voxel centres as
// series.geometry (its axes may be flipped or permuted, as a RAS-stored NIfTI of a DICOM series
// is); the result is reindexed to the series' voxel order. Throws Error naming both grids
// otherwise, or when a value is not a whole number >= 0.
core::Volume label_map_on_series_grid(const core::Volume& labels, const io::DicomSeries& series);

// Writes the named labels of `labels` as an RTSTRUCT and/or SEG referencing `series`, in the
// order of `names`. Empty structures are left out with a warning and listed in the report.
// Throws Error when the grids differ, no named structure has a voxel, or nothing is to be
// written.
DicomExportReport export_labels_to_dicom(const core::Volume& labels,
                                         const std::vector<LabelName>& names,
                                         const io::DicomSeries& series,
                                         const DicomExportOptions& options);

// `cajal labels-to-dicom`: reads the label map file and the reference series (`series_uid`
// choosing one in a folder of several), parses the names (see parse_label_names) and exports.
DicomExportReport labels_to_dicom(const std::filesystem::path& labels_path,
                                  const std::filesystem::path& reference_dicom,
                                  const std::string& series_uid, const std::string& names_spec,
                                  const DicomExportOptions& options);

nlohmann::json to_json(const DicomExportReport& report);
std::string to_text(const DicomExportReport& report);

}  // namespace cajal::pipeline
