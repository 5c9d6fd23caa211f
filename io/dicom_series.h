// DICOM folders: finding the image series in them, ordering their slices, and reading one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/volume.h"

namespace cajal::io {

// What every image of one series shares: its identity and the patient and study it belongs to.
struct DicomSeriesAttributes {
  std::string series_uid;
  std::string study_uid;
  std::string frame_of_reference_uid;
  std::string modality;
  std::string series_description;
  std::string series_number;
  std::string patient_id;
  std::string patient_name;
  std::string study_date;
  std::string sop_class_uid;
};

// One image series found in a folder, its slices in order along the slice normal.
struct DicomSeries : DicomSeriesAttributes {
  // Image files in slice order (ascending along row x column direction), with their SOP
  // Instance UIDs in the same order.
  std::vector<std::filesystem::path> files;
  std::vector<std::string> sop_instance_uids;
  // Geometry derived from the headers (ImagePositionPatient, ImageOrientationPatient,
  // PixelSpacing, slice positions); valid when problem is empty.
  core::Geometry geometry;
  // Why this series cannot be read as a volume (uneven spacing, missing slices, gantry tilt,
  // ...); empty when it can.
  std::string problem;
  // Files of this series left out (localizers, other orientations), each with the reason.
  std::vector<std::string> left_out;
};

struct DicomFolder {
  std::vector<DicomSeries> series;   // image series, ordered by series number then UID
  std::vector<std::string> skipped;  // files that are not images, each with the reason
};

// Reads the headers of every file under `folder` (recursively) and groups image files into
// series. Throws Error when the folder does not exist or holds no DICOM image at all.
DicomFolder scan_dicom_folder(const std::filesystem::path& folder);

// Picks the series to read: the one with `series_uid`, or the only one. Throws Error listing the
// series when the choice is ambiguous or the UID is not there.
const DicomSeries& choose_series(const DicomFolder& folder, const std::string& series_uid);

// Logs a warning for each file the scan skipped (the first ten, then a count).
void warn_skipped(const DicomFolder& folder);

// Reads the pixels of a scanned series (rescale slope and intercept applied, so CT is in HU), and
// their range into *range when given (as core::intensity_range, found slice by slice while the
// slices are read). Throws Error when series.problem is not empty.
core::Volume read_dicom_series(const DicomSeries& series, core::IntensityRange* range = nullptr);

// Reads one DICOM image file as a volume of one slice.
core::Volume read_dicom_file(const std::filesystem::path& file);

}  // namespace cajal::io
