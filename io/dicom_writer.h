// Writing a volume as a DICOM CT Image Storage series: one file per slice along the volume's k
// axis, explicit VR little endian, through DCMTK.
#pragma once

#include <filesystem>
#include <string>

#include "core/volume.h"

namespace cajal::io {

// What the caller decides about the series: identities, UIDs and descriptions. Nothing here is
// invented by the writer, so the same inputs always give the same bytes.
struct DicomSeriesInfo {
  std::string patient_name;  // e.g. "PHANTOM^0001"
  std::string patient_id;
  std::string patient_birth_date;  // YYYYMMDD or empty
  std::string patient_sex;         // "M", "F", "O" or empty
  std::string study_uid;
  std::string study_id;
  std::string study_date;  // YYYYMMDD
  std::string study_time;  // HHMMSS
  std::string study_description;
  std::string accession_number;
  std::string series_uid;
  std::string series_description;
  int series_number = 1;
  std::string frame_of_reference_uid;
  // SOP Instance UID of slice k (k from 0) is "<sop_instance_uid_prefix>.<k + 1>"; the prefix
  // must leave room for the suffix within DICOM's 64 characters.
  std::string sop_instance_uid_prefix;
  std::string manufacturer = "cajal";
  std::string body_part_examined;  // e.g. "CHEST"; empty leaves it out
  // Stored value = (HU - intercept) / slope, which must be an integer that fits in int16.
  double rescale_intercept = -1024.0;
  double rescale_slope = 1.0;
  double window_center = 40.0;
  double window_width = 400.0;
};

// Writes `volume` (pixels in HU, whole numbers) as a CT series in `folder`, one file per slice k
// named IM000001.dcm, IM000002.dcm, ... with InstanceNumber k + 1. ImagePositionPatient and
// ImageOrientationPatient come from the volume's geometry (LPS; row cosine = axis i, column
// cosine = axis j); PixelSpacing is [spacing j, spacing i]; SliceThickness is spacing k.
// When the volume's direction is left-handed (axis k against row x column) a reader that orders
// slices along the normal gets axis k reversed: the same voxels in the same physical places.
// The series is written in a temporary sibling folder and renamed to `folder` when complete.
// Throws Error when `folder` already exists, when the geometry is not valid, when a value does not
// fit the rescale, or when a file cannot be written.
void write_dicom_series(const core::Volume& volume, const DicomSeriesInfo& info,
                        const std::filesystem::path& folder);

}  // namespace cajal::io
