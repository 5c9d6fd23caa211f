#include "pipeline/describe.h"

#include <array>
#include <cstdio>
#include <sstream>

#include "io/volume_io.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

VolumeSummary summarise(const core::Volume& volume, const std::string& series_uid) {
  return {series_uid, volume.geometry, volume.pixel_type, core::intensity_range(volume)};
}

// Adding 0.0 turns -0.0 into 0.0, which direction cosines print as otherwise.
template <std::size_t N>
std::array<double, N> without_negative_zero(std::array<double, N> values) {
  for (double& value : values) {
    value += 0.0;
  }
  return values;
}

std::string format_numbers(const double* values, int count, const char* separator) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", values[i] + 0.0);
    text += (i == 0 ? "" : separator) + std::string(buffer);
  }
  return text;
}

std::string format_size(const core::Index3& size) {
  return std::to_string(size[0]) + " x " + std::to_string(size[1]) + " x " +
         std::to_string(size[2]);
}

void append_row(std::ostringstream& out, const std::string& name, const std::string& value) {
  char label[24];
  std::snprintf(label, sizeof label, "  %-16s", name.c_str());
  out << label << value << "\n";
}

}  // namespace

InputDescription describe_input(const fs::path& path, const std::string& series_uid) {
  InputDescription description;
  description.path = path.string();
  const io::InputKind kind = io::classify_input(path);
  description.kind = io::to_string(kind);
  if (kind == io::InputKind::dicom_folder) {
    description.folder = io::scan_dicom_folder(path);
    const bool one_series = description.folder->series.size() == 1;
    if (!series_uid.empty() || (one_series && description.folder->series[0].problem.empty())) {
      const io::DicomSeries& series = io::choose_series(*description.folder, series_uid);
      description.volume = summarise(io::read_dicom_series(series), series.series_uid);
    }
    return description;
  }
  description.volume = summarise(io::read_volume(path, {series_uid}), "");
  return description;
}

nlohmann::json to_json(const InputDescription& description) {
  nlohmann::json out;
  out["path"] = description.path;
  out["kind"] = description.kind;
  if (description.folder) {
    out["series"] = nlohmann::json::array();
    for (const io::DicomSeries& series : description.folder->series) {
      const core::Geometry& g = series.geometry;
      out["series"].push_back({{"series_uid", series.series_uid},
                               {"modality", series.modality},
                               {"description", series.series_description},
                               {"series_number", series.series_number},
                               {"image_count", series.files.size()},
                               {"size", g.size},
                               {"spacing", g.spacing},
                               {"orientation", core::orientation_code(g.direction)},
                               {"problem", series.problem},
                               {"left_out", series.left_out}});
    }
    out["skipped"] = description.folder->skipped;
  }
  if (description.volume) {
    const VolumeSummary& v = *description.volume;
    nlohmann::json volume = {{"size", v.geometry.size},
                             {"spacing", v.geometry.spacing},
                             {"origin", without_negative_zero(v.geometry.origin)},
                             {"direction", without_negative_zero(v.geometry.direction)},
                             {"orientation", core::orientation_code(v.geometry.direction)},
                             {"pixel_type", core::to_string(v.pixel_type)},
                             {"intensity_range", {v.intensity_range.min, v.intensity_range.max}}};
    if (!v.series_uid.empty()) {
      volume["series_uid"] = v.series_uid;
    }
    out["volume"] = volume;
  }
  return out;
}

std::string to_text(const InputDescription& description) {
  std::ostringstream out;
  if (description.folder) {
    const io::DicomFolder& folder = *description.folder;
    out << "DICOM folder " << description.path << ": " << folder.series.size() << " image series, "
        << folder.skipped.size() << " files skipped\n";
    for (const io::DicomSeries& series : folder.series) {
      const core::Geometry& g = series.geometry;
      out << "\nSeries " << series.series_uid << "\n";
      append_row(out, "modality", series.modality);
      append_row(out, "description", series.series_description);
      append_row(out, "series number", series.series_number);
      append_row(out, "images", std::to_string(series.files.size()));
      append_row(out, "size", format_size(g.size));
      append_row(out, "spacing", format_numbers(g.spacing.data(), 3, " x ") + " mm");
      append_row(out, "orientation", core::orientation_code(g.direction));
      if (!series.problem.empty()) {
        append_row(out, "problem", series.problem);
      }
      for (const std::string& note : series.left_out) {
        append_row(out, "left out", note);
      }
    }
    for (const std::string& note : folder.skipped) {
      out << "skipped: " << note << "\n";
    }
  }
  if (description.volume) {
    const VolumeSummary& v = *description.volume;
    const core::Geometry& g = v.geometry;
    out << (description.folder ? "\n" : "") << "Volume";
    out << (v.series_uid.empty() ? " " + description.path : " of series " + v.series_uid) << "\n";
    append_row(out, "size", format_size(g.size));
    append_row(out, "spacing", format_numbers(g.spacing.data(), 3, " x ") + " mm");
    append_row(out, "origin", format_numbers(g.origin.data(), 3, ", ") + " mm (LPS)");
    append_row(out, "direction",
               format_numbers(g.direction.data(), 3, ", ") + " / " +
                   format_numbers(g.direction.data() + 3, 3, ", ") + " / " +
                   format_numbers(g.direction.data() + 6, 3, ", "));
    append_row(out, "orientation", core::orientation_code(g.direction));
    append_row(out, "pixel type", core::to_string(v.pixel_type));
    const double range[2] = {v.intensity_range.min, v.intensity_range.max};
    append_row(out, "intensity range", format_numbers(range, 2, " .. "));
  }
  return out.str();
}

}  // namespace cajal::pipeline
