// Pieces the RT Structure Set and Segmentation writers share: the source slices' headers,
// decimal strings, dates and atomic saving. Internal to io/.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "io/dicom_series.h"

class DcmFileFormat;
class DcmItem;

namespace cajal::io::detail {

// One image of the referenced series, in the series' slice order.
struct SourceSlice {
  std::filesystem::path file;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::array<double, 3> position{};  // ImagePositionPatient, mm LPS
};

// Re-reads the headers of the series' files (in slice order) and checks that they still match
// the scan (SOP Instance UIDs, positions present). Throws Error otherwise.
std::vector<SourceSlice> read_source_slices(const DicomSeries& series);

// A decimal string (DS) of at most 16 characters holding `value` as precisely as fits.
std::string format_ds(double value);

// The local date (YYYYMMDD) and time (HHMMSS), from one reading of the clock so that a file
// written at midnight does not pair one day's date with the next day's time.
struct DicomDateTime {
  std::string date;
  std::string time;
};
DicomDateTime local_date_time();

// Copies the Patient, General Study, Patient Study and Frame of Reference attributes (and
// SpecificCharacterSet) of the first source image into `target`.
void copy_patient_and_study(const std::filesystem::path& source_file, DcmItem& target);

// Saves `file` as Explicit VR Little Endian under a temporary name next to `path` and renames
// it into place; on error nothing is left at `path`. `what` names the object in messages.
void save_atomically(DcmFileFormat& file, const std::filesystem::path& path,
                     const std::string& what);

}  // namespace cajal::io::detail
