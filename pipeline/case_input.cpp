#include "pipeline/case_input.h"

#include "io/volume_io.h"

namespace cajal::pipeline {

ReadInput read_input(const std::filesystem::path& input, const std::string& series_uid) {
  if (io::classify_input(input) == io::InputKind::dicom_folder) {
    const io::DicomFolder folder = io::scan_dicom_folder(input);
    io::warn_skipped(folder);
    const io::DicomSeries& series = io::choose_series(folder, series_uid);
    ReadInput read{{}, {}, series};
    read.volume = io::read_dicom_series(series, &read.range);
    return read;
  }
  ReadInput read{io::read_volume(input, {series_uid}), {}, std::nullopt};
  read.range = core::intensity_range(read.volume);
  return read;
}

}  // namespace cajal::pipeline
