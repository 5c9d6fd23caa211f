// What `cajal info` reports about an input: the series of a DICOM folder, and the volume.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "io/dicom_series.h"

namespace cajal::pipeline {

struct VolumeSummary {
  std::string series_uid;  // DICOM only
  core::Geometry geometry;
  core::PixelType pixel_type = core::PixelType::float32;
  core::IntensityRange intensity_range;
};

struct InputDescription {
  std::string path;
  std::string kind;  // "dicom_folder", "dicom_file" or "volume_file"
  std::optional<io::DicomFolder> folder;
  // Present for a file, a chosen series, or a folder whose only series is readable.
  std::optional<VolumeSummary> volume;
};

// Describes `path`; reads the volume when there is one to read. Throws Error on bad input,
// including a --series UID that is not in the folder.
InputDescription describe_input(const std::filesystem::path& path, const std::string& series_uid);

nlohmann::json to_json(const InputDescription& description);
std::string to_text(const InputDescription& description);

}  // namespace cajal::pipeline
