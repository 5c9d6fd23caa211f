// The attributes of one DICOM file that decide which series it belongs to and where its slice
// lies. Internal to io/.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/dicom_series.h"

namespace cajal::io::detail {

struct DicomHeader : DicomSeriesAttributes {
  std::filesystem::path file;
  std::string sop_instance_uid;
  std::string image_type;  // all values, joined by backslashes
  bool has_pixel_data = false;
  long rows = 0;
  long columns = 0;
  long number_of_frames = 1;
  bool has_number_of_frames = false;
  // Image Pixel module, as far as the file has it.
  std::optional<long> samples_per_pixel;
  std::optional<long> bits_allocated;
  std::optional<long> bits_stored;
  std::string photometric;
  // Values of GridFrameOffsetVector (RT Dose), when it is there.
  std::optional<unsigned long> grid_frame_offsets;
  std::optional<std::array<double, 3>> position;       // ImagePositionPatient
  std::optional<std::array<double, 6>> orientation;    // ImageOrientationPatient
  std::optional<std::array<double, 2>> pixel_spacing;  // [between rows, between columns]
  std::optional<double> slice_thickness;
  std::optional<double> spacing_between_slices;
  // Names of the geometry attributes above whose values are not finite numbers.
  std::vector<std::string> not_finite;
};

// Reads the header of `file`. Returns nothing when the file is not DICOM at all; throws Error
// when it looks like DICOM but cannot be parsed.
std::optional<DicomHeader> read_dicom_header(const std::filesystem::path& file);

// Why a DICOM file is not a slice of an image series, or empty when it is one.
std::string why_not_an_image_slice(const DicomHeader& header);

// Whether the file starts with a DICOM preamble ("DICM" at byte 128).
bool has_dicom_magic(const std::filesystem::path& file);

}  // namespace cajal::io::detail
