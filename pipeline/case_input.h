// What `cajal segment` and `cajal classify` share for each case: reading its input (a DICOM
// series folder, with the series it came from, or a volume file) and timing its stages.
// Internal to pipeline/.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/volume.h"
#include "io/dicom_series.h"

namespace cajal::pipeline {

// The input volume, the range of its pixels, and its DICOM series when it is one.
struct ReadInput {
  core::Volume volume;
  core::IntensityRange range;
  std::optional<io::DicomSeries> series;
};

// A DICOM folder's series `series_uid` (the only one when empty), or the volume file.
ReadInput read_input(const std::filesystem::path& input, const std::string& series_uid);

// Appends (stage, seconds since the previous finish or construction) to `timings`.
class StageClock {
 public:
  explicit StageClock(std::vector<std::pair<std::string, double>>& timings) : timings_(timings) {}
  void finish(const std::string& stage) {
    const auto now = std::chrono::steady_clock::now();
    timings_.emplace_back(stage, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  std::vector<std::pair<std::string, double>>& timings_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace cajal::pipeline
