#include "io/dicom_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

#include "core/error.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

// A decimal string (VR DS) of at most 16 characters, as precise as fits.
std::string format_ds(double value) {
  if (std::abs(value) < 1e-12) {
    return "0";
  }
  char buffer[64];
  for (int precision = 15; precision > 0; --precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strlen(buffer) <= 16) {
      return buffer;
    }
  }
  throw Error("DICOM decimal value", "a number that fits in 16 characters", buffer);
}

std::string join_ds(std::initializer_list<double> values) {
  std::string out;
  for (double value : values) {
    out += (out.empty() ? "" : "\\") + format_ds(value);
  }
  return out;
}

void check_uid(const std::string& uid, const std::string& what, std::size_t room = 0) {
  const bool ok = !uid.empty() && uid.size() + room <= 64 &&
                  uid.find_first_not_of("0123456789.") == std::string::npos;
  if (!ok) {
    throw Error(what,
                "a UID of digits and dots, at most " + std::to_string(64 - room) + " characters",
                "'" + uid + "'");
  }
}

class Writer {
 public:
  Writer(const core::Volume& volume, const DicomSeriesInfo& info) : volume_(volume), info_(info) {}

  void write_slice(std::int64_t k, const fs::path& file) const {
    DcmFileFormat format;
    DcmDataset& ds = *format.getDataset();
    const core::Geometry& g = volume_.geometry;
    const std::string instance = std::to_string(k + 1);
    const std::string sop_uid = info_.sop_instance_uid_prefix + "." + instance;
    put(ds, DCM_SpecificCharacterSet, "ISO_IR 100");
    put(ds, DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL");
    put(ds, DCM_SOPClassUID, UID_CTImageStorage);
    put(ds, DCM_SOPInstanceUID, sop_uid);
    put(ds, DCM_StudyDate, info_.study_date);
    put(ds, DCM_SeriesDate, info_.study_date);
    put(ds, DCM_ContentDate, info_.study_date);
    put(ds, DCM_StudyTime, info_.study_time);
    put(ds, DCM_SeriesTime, info_.study_time);
    put(ds, DCM_ContentTime, info_.study_time);
    put(ds, DCM_AccessionNumber, info_.accession_number);
    put(ds, DCM_Modality, "CT");
    put(ds, DCM_Manufacturer, info_.manufacturer);
    put(ds, DCM_ReferringPhysicianName, "");
    put(ds, DCM_StudyDescription, info_.study_description);
    put(ds, DCM_SeriesDescription, info_.series_description);
    put(ds, DCM_PatientName, info_.patient_name);
    put(ds, DCM_PatientID, info_.patient_id);
    put(ds, DCM_PatientBirthDate, info_.patient_birth_date);
    put(ds, DCM_PatientSex, info_.patient_sex);
    if (!info_.body_part_examined.empty()) {
      put(ds, DCM_BodyPartExamined, info_.body_part_examined);
    }
    put(ds, DCM_SliceThickness, format_ds(g.spacing[2]));
    put(ds, DCM_KVP, "120");
    put(ds, DCM_PatientPosition, "HFS");
    put(ds, DCM_StudyInstanceUID, info_.study_uid);
    put(ds, DCM_SeriesInstanceUID, info_.series_uid);
    put(ds, DCM_StudyID, info_.study_id);
    put(ds, DCM_SeriesNumber, std::to_string(info_.series_number));
    put(ds, DCM_AcquisitionNumber, "1");
    put(ds, DCM_InstanceNumber, instance);
    const core::Vec3 position = g.index_to_physical({0.0, 0.0, static_cast<double>(k)});
    const core::Vec3 row = g.axis_direction(0);
    const core::Vec3 column = g.axis_direction(1);
    put(ds, DCM_ImagePositionPatient, join_ds({position[0], position[1], position[2]}));
    put(ds, DCM_ImageOrientationPatient,
        join_ds({row[0], row[1], row[2], column[0], column[1], column[2]}));
    put(ds, DCM_FrameOfReferenceUID, info_.frame_of_reference_uid);
    put(ds, DCM_PositionReferenceIndicator, "");
    const core::Vec3 normal{row[1] * column[2] - row[2] * column[1],
                            row[2] * column[0] - row[0] * column[2],
                            row[0] * column[1] - row[1] * column[0]};
    put(ds, DCM_SliceLocation,
        format_ds(normal[0] * position[0] + normal[1] * position[1] + normal[2] * position[2]));
    put_us(ds, DCM_SamplesPerPixel, 1);
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    put_us(ds, DCM_Rows, static_cast<Uint16>(g.size[1]));
    put_us(ds, DCM_Columns, static_cast<Uint16>(g.size[0]));
    put(ds, DCM_PixelSpacing, join_ds({g.spacing[1], g.spacing[0]}));
    put_us(ds, DCM_BitsAllocated, 16);
    put_us(ds, DCM_BitsStored, 16);
    put_us(ds, DCM_HighBit, 15);
    put_us(ds, DCM_PixelRepresentation, 1);
    put(ds, DCM_WindowCenter, format_ds(info_.window_center));
    put(ds, DCM_WindowWidth, format_ds(info_.window_width));
    put(ds, DCM_RescaleIntercept, format_ds(info_.rescale_intercept));
    put(ds, DCM_RescaleSlope, format_ds(info_.rescale_slope));
    put(ds, DCM_RescaleType, "HU");
    // PixelData is OW: the signed values go in as their 16-bit patterns.
    const std::vector<Sint16> stored = stored_slice(k);
    std::vector<Uint16> words(stored.size());
    std::memcpy(words.data(), stored.data(), stored.size() * sizeof(Uint16));
    check(ds.putAndInsertUint16Array(DCM_PixelData, words.data(),
                                     static_cast<unsigned long>(words.size())),
          "PixelData");
    const OFCondition status = format.saveFile(file.c_str(), EXS_LittleEndianExplicit);
    if (status.bad()) {
      throw Error("DICOM file '" + file.string() + "'", "written",
                  std::string("a write error (") + status.text() + ")");
    }
  }

 private:
  static void check(const OFCondition& status, const char* what) {
    if (status.bad()) {
      throw Error(std::string("DICOM attribute ") + what, "set",
                  std::string("an error (") + status.text() + ")");
    }
  }
  static void put(DcmDataset& ds, const DcmTagKey& tag, const std::string& value) {
    check(ds.putAndInsertString(DcmTag(tag), value.c_str()), DcmTag(tag).getTagName());
  }
  static void put_us(DcmDataset& ds, const DcmTagKey& tag, Uint16 value) {
    check(ds.putAndInsertUint16(DcmTag(tag), value), DcmTag(tag).getTagName());
  }

  std::vector<Sint16> stored_slice(std::int64_t k) const {
    const std::int64_t count = volume_.geometry.size[0] * volume_.geometry.size[1];
    std::vector<Sint16> stored(static_cast<std::size_t>(count));
    const float* src = volume_.pixels.data() + k * count;
    for (std::int64_t n = 0; n < count; ++n) {
      const double value =
          (static_cast<double>(src[n]) - info_.rescale_intercept) / info_.rescale_slope;
      const double rounded = std::round(value);
      if (std::abs(value - rounded) > 1e-3 || rounded < -32768.0 || rounded > 32767.0) {
        throw Error("pixel value " + std::to_string(src[n]) + " of slice " + std::to_string(k),
                    "a value that stores as a 16-bit integer with intercept " +
                        format_ds(info_.rescale_intercept) + " and slope " +
                        format_ds(info_.rescale_slope),
                    "stored value " + std::to_string(value));
      }
      stored[static_cast<std::size_t>(n)] = static_cast<Sint16>(rounded);
    }
    return stored;
  }

  const core::Volume& volume_;
  const DicomSeriesInfo& info_;
};

// Removes the temporary folder unless released.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(fs::path path) : path_(std::move(path)) {}
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  ~TemporaryFolder() {
    if (!path_.empty()) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

}  // namespace

void write_dicom_series(const core::Volume& volume, const DicomSeriesInfo& info,
                        const fs::path& folder) {
  const core::Geometry& g = volume.geometry;
  core::validate_geometry(g, "volume written as DICOM to '" + folder.string() + "'");
  if (g.size[0] <= 0 || g.size[1] <= 0 || g.size[2] <= 0 || g.size[0] > 65535 ||
      g.size[1] > 65535) {
    throw Error("volume written as DICOM", "1 to 65535 rows and columns and at least one slice",
                "size " + std::to_string(g.size[0]) + "x" + std::to_string(g.size[1]) + "x" +
                    std::to_string(g.size[2]));
  }
  if (volume.pixels.size() != static_cast<std::size_t>(g.voxel_count())) {
    throw InternalError("volume pixels do not match its size");
  }
  if (!(info.rescale_slope > 0.0)) {
    throw Error("RescaleSlope", "a positive number", format_ds(info.rescale_slope));
  }
  check_uid(info.study_uid, "StudyInstanceUID");
  check_uid(info.series_uid, "SeriesInstanceUID");
  check_uid(info.frame_of_reference_uid, "FrameOfReferenceUID");
  check_uid(info.sop_instance_uid_prefix, "SOP Instance UID prefix",
            1 + std::to_string(g.size[2]).size());
  std::error_code error;
  if (fs::exists(folder, error)) {
    throw Error("DICOM output folder '" + folder.string() + "'", "a folder that does not exist yet",
                "an existing path");
  }
  const fs::path parent = folder.has_parent_path() ? folder.parent_path() : fs::path(".");
  TemporaryFolder temporary(parent / ("." + folder.filename().string() + ".cajal-tmp"));
  fs::remove_all(temporary.path(), error);
  if (!fs::create_directories(temporary.path(), error) || error) {
    throw Error("DICOM output folder '" + folder.string() + "'", "a folder that can be created",
                error.message());
  }
  const Writer writer(volume, info);
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "IM%06lld.dcm", static_cast<long long>(k + 1));
    writer.write_slice(k, temporary.path() / name);
  }
  fs::rename(temporary.path(), folder, error);
  if (error) {
    throw Error("DICOM output folder '" + folder.string() + "'", "renamed into place",
                error.message());
  }
  temporary.release();
}

}  // namespace cajal::io
