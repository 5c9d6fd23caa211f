#include "pipeline/dicom_export.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "io/rtstruct_writer.h"
#include "io/seg_writer.h"
#include "io/volume_io.h"

namespace cajal::pipeline {
namespace {

// A voxel of the label map must fall within this fraction of a voxel of a series voxel centre.
constexpr double kGridTolerance = 0.01;

std::string describe_grid(const core::Geometry& g) {
  std::ostringstream text;
  text << "size " << g.size[0] << "x" << g.size[1] << "x" << g.size[2] << ", spacing "
       << core::to_string(g.spacing) << ", origin " << core::to_string(g.origin) << ", orientation "
       << core::orientation_code(g.direction);
  return text.str();
}

// Checks what can be checked before anything is read.
void check_options(const DicomExportOptions& options) {
  if (!options.rtstruct_path && !options.seg_path) {
    throw Error("DICOM export", "an RTSTRUCT or SEG output path", "neither");
  }
  io::validate_uid_root(options.info.uid_root);
  if (options.info.label.empty() || options.info.label.size() > 16) {
    throw Error("structure set label", "1 to 16 characters", "'" + options.info.label + "'");
  }
}

bool near_integer(double value) {
  return std::abs(value - std::round(value)) <= kGridTolerance;
}

}  // namespace

core::Volume label_map_on_series_grid(const core::Volume& labels, const io::DicomSeries& series) {
  const core::Geometry& grid = series.geometry;
  const core::Geometry& own = labels.geometry;
  const auto fail = [&] {
    return Error("label map grid",
                 "the voxel grid of reference series " + series.series_uid + " (" +
                     describe_grid(grid) + ")",
                 describe_grid(own));
  };
  const auto label_index = [&](const core::Vec3& series_index) {
    return own.physical_to_index(grid.index_to_physical(series_index));
  };
  const core::Vec3 start = label_index({0, 0, 0});
  std::array<int, 3> axis{};  // label-map axis that series axis c runs along
  std::array<std::int64_t, 3> step{};
  std::array<bool, 3> used{};
  for (int c = 0; c < 3; ++c) {
    core::Vec3 unit{0, 0, 0};
    unit[c] = 1;
    const core::Vec3 next = label_index(unit);
    int best = 0;
    for (int m = 0; m < 3; ++m) {
      if (std::abs(next[m] - start[m]) > std::abs(next[best] - start[best])) {
        best = m;
      }
    }
    for (int m = 0; m < 3; ++m) {
      const double delta = next[m] - start[m];
      const double expected = m == best ? (delta > 0 ? 1.0 : -1.0) : 0.0;
      if (std::abs(delta - expected) > kGridTolerance) {
        throw fail();
      }
    }
    if (used[best] || own.size[best] != grid.size[c]) {
      throw fail();
    }
    used[best] = true;
    axis[c] = best;
    step[c] = next[best] > start[best] ? 1 : -1;
  }
  const core::Vec3 end =
      label_index({static_cast<double>(grid.size[0] - 1), static_cast<double>(grid.size[1] - 1),
                   static_cast<double>(grid.size[2] - 1)});
  for (int m = 0; m < 3; ++m) {
    if (!near_integer(start[m]) || !near_integer(end[m]) || std::round(start[m]) < 0 ||
        std::round(start[m]) >= static_cast<double>(own.size[m])) {
      throw fail();
    }
  }
  std::array<std::int64_t, 3> origin_index{};
  for (int m = 0; m < 3; ++m) {
    origin_index[m] = static_cast<std::int64_t>(std::round(start[m]));
  }
  // Strides of the label map's pixels along each series axis.
  const std::array<std::int64_t, 3> own_stride{1, own.size[0], own.size[0] * own.size[1]};
  std::array<std::int64_t, 3> stride{};
  for (int c = 0; c < 3; ++c) {
    stride[c] = step[c] * own_stride[axis[c]];
  }
  const std::int64_t base = origin_index[0] * own_stride[0] + origin_index[1] * own_stride[1] +
                            origin_index[2] * own_stride[2];
  core::Volume out = core::make_volume(grid, labels.pixel_type);
  std::size_t n = 0;
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      for (std::int64_t i = 0; i < grid.size[0]; ++i) {
        const float value = labels.pixels[static_cast<std::size_t>(base + i * stride[0] +
                                                                   j * stride[1] + k * stride[2])];
        if (value < 0 || value != std::floor(value)) {
          throw Error("label map value", "whole numbers >= 0", std::to_string(value));
        }
        out.pixels[n++] = value;
      }
    }
  }
  return out;
}

DicomExportReport export_labels_to_dicom(const core::Volume& labels,
                                         const std::vector<LabelName>& names,
                                         const io::DicomSeries& series,
                                         const DicomExportOptions& options) {
  check_options(options);
  if (!series.problem.empty()) {
    throw Error("reference series " + series.series_uid, "a regular grid of slices",
                series.problem);
  }
  const core::Volume aligned = label_map_on_series_grid(labels, series);
  std::map<int, std::int64_t> counts;
  for (float value : aligned.pixels) {
    if (value > 0) {
      ++counts[static_cast<int>(value)];
    }
  }
  DicomExportReport report;
  report.reference_series_uid = series.series_uid;
  report.study_uid = series.study_uid;
  const core::Vec3& spacing = series.geometry.spacing;
  std::vector<io::ExportStructure> structures;
  for (const LabelName& entry : names) {
    const auto found = counts.find(entry.label);
    if (found == counts.end()) {
      core::log_warning("structure '" + entry.name + "' (label " + std::to_string(entry.label) +
                        ") is empty: left out of the RTSTRUCT and SEG");
      report.empty.push_back(entry);
      continue;
    }
    io::ExportStructure structure;
    structure.number = entry.label;
    structure.name = entry.name;
    structure.color = structure_color(entry.name, entry.label);
    structure.anatomy = anatomy_code(entry.name);
    structure.mask.resize(aligned.pixels.size());
    const auto value = static_cast<float>(entry.label);
    for (std::size_t v = 0; v < aligned.pixels.size(); ++v) {
      structure.mask[v] = aligned.pixels[v] == value ? 1 : 0;
    }
    ExportedStructure exported;
    exported.label = entry.label;
    exported.name = entry.name;
    exported.color = structure.color;
    exported.anatomy = structure.anatomy;
    exported.voxel_count = found->second;
    exported.volume_ml =
        static_cast<double>(found->second) * spacing[0] * spacing[1] * spacing[2] / 1000.0;
    report.structures.push_back(exported);
    structures.push_back(std::move(structure));
  }
  for (const auto& [label, count] : counts) {
    const bool named = std::any_of(names.begin(), names.end(),
                                   [&](const LabelName& entry) { return entry.label == label; });
    if (!named) {
      report.unnamed_labels.push_back(label);
    }
  }
  if (structures.empty()) {
    throw Error("label map", "at least one named label with voxels", "all named labels empty");
  }
  if (options.rtstruct_path) {
    const io::RtStructSummary written =
        io::write_rtstruct(series, structures, options.info, *options.rtstruct_path);
    report.rtstruct_path = options.rtstruct_path;
    report.rtstruct_sop_instance_uid = written.sop_instance_uid;
    for (std::size_t s = 0; s < written.rois.size(); ++s) {
      report.structures[s].rtstruct_roi_number = written.rois[s].number;
      report.structures[s].contour_count = written.rois[s].contour_count;
      report.structures[s].slice_uids = written.rois[s].slice_uids;
    }
  }
  if (options.seg_path) {
    const io::SegSummary written =
        io::write_seg(series, structures, options.info, *options.seg_path);
    report.seg_path = options.seg_path;
    report.seg_sop_instance_uid = written.sop_instance_uid;
    for (std::size_t s = 0; s < written.segments.size(); ++s) {
      ExportedStructure& exported = report.structures[s];
      exported.seg_segment_number = written.segments[s].number;
      exported.seg_frame_count = written.segments[s].slice_uids.size();
      CAJAL_CHECK(!options.rtstruct_path || exported.slice_uids == written.segments[s].slice_uids)
          << "structure '" << exported.name << "': RTSTRUCT and SEG slices differ";
      exported.slice_uids = written.segments[s].slice_uids;
    }
  }
  return report;
}

DicomExportReport labels_to_dicom(const std::filesystem::path& labels_path,
                                  const std::filesystem::path& reference_dicom,
                                  const std::string& series_uid, const std::string& names_spec,
                                  const DicomExportOptions& options) {
  check_options(options);
  const std::vector<LabelName> names = parse_label_names(names_spec);
  if (!std::filesystem::is_directory(reference_dicom)) {
    throw Error("reference DICOM '" + reference_dicom.string() + "'", "a folder of DICOM images",
                std::filesystem::exists(reference_dicom) ? "a file" : "nothing");
  }
  const io::DicomFolder folder = io::scan_dicom_folder(reference_dicom);
  io::warn_skipped(folder);
  const io::DicomSeries& series = io::choose_series(folder, series_uid);
  const core::Volume labels = io::read_volume(labels_path);
  return export_labels_to_dicom(labels, names, series, options);
}

nlohmann::json to_json(const DicomExportReport& report) {
  nlohmann::json json;
  json["reference_series_uid"] = report.reference_series_uid;
  json["study_uid"] = report.study_uid;
  json["rtstruct"] = report.rtstruct_path
                         ? nlohmann::json{{"path", report.rtstruct_path->string()},
                                          {"sop_instance_uid", report.rtstruct_sop_instance_uid}}
                         : nlohmann::json(nullptr);
  json["seg"] = report.seg_path ? nlohmann::json{{"path", report.seg_path->string()},
                                                 {"sop_instance_uid", report.seg_sop_instance_uid}}
                                : nlohmann::json(nullptr);
  json["structures"] = nlohmann::json::array();
  for (const ExportedStructure& s : report.structures) {
    nlohmann::json entry{{"label", s.label},
                         {"name", s.name},
                         {"color", {s.color[0], s.color[1], s.color[2]}},
                         {"voxels", s.voxel_count},
                         {"volume_ml", s.volume_ml},
                         {"slices", s.slice_uids.size()},
                         {"slice_uids", s.slice_uids}};
    entry["code"] = s.anatomy ? nlohmann::json{{"value", s.anatomy->value},
                                               {"scheme", s.anatomy->scheme},
                                               {"meaning", s.anatomy->meaning}}
                              : nlohmann::json(nullptr);
    if (report.rtstruct_path) {
      entry["roi_number"] = s.rtstruct_roi_number;
      entry["contours"] = s.contour_count;
    }
    if (report.seg_path) {
      entry["segment_number"] = s.seg_segment_number;
      entry["frames"] = s.seg_frame_count;
    }
    json["structures"].push_back(entry);
  }
  json["empty"] = nlohmann::json::array();
  for (const LabelName& e : report.empty) {
    json["empty"].push_back({{"label", e.label}, {"name", e.name}});
  }
  json["unnamed_labels"] = report.unnamed_labels;
  return json;
}

std::string to_text(const DicomExportReport& report) {
  std::ostringstream text;
  text << "reference series " << report.reference_series_uid << "\n";
  if (report.rtstruct_path) {
    text << "RTSTRUCT " << report.rtstruct_path->string() << " ("
         << report.rtstruct_sop_instance_uid << ")\n";
  }
  if (report.seg_path) {
    text << "SEG      " << report.seg_path->string() << " (" << report.seg_sop_instance_uid
         << ")\n";
  }
  for (const ExportedStructure& s : report.structures) {
    text << "  " << s.label << " " << s.name << ": " << s.voxel_count << " voxels, " << s.volume_ml
         << " mL, " << s.slice_uids.size() << " slices";
    if (report.rtstruct_path) {
      text << ", " << s.contour_count << " contours";
    }
    if (report.seg_path) {
      text << ", segment " << s.seg_segment_number;
    }
    text << (s.anatomy ? ", SCT " + s.anatomy->value : std::string()) << "\n";
  }
  for (const LabelName& e : report.empty) {
    text << "  " << e.label << " " << e.name << ": empty, left out\n";
  }
  if (!report.unnamed_labels.empty()) {
    text << "  labels without a name, not exported:";
    for (int label : report.unnamed_labels) {
      text << " " << label;
    }
    text << "\n";
  }
  return text.str();
}

}  // namespace cajal::pipeline
