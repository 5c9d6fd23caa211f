#include "io/dicom_write_common.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <system_error>

#include <unistd.h>

#include "core/error.h"
#include "io/dicom_header.h"
#include "io/structure_set.h"

namespace cajal::io {
namespace {

// Decimal digits of a 128-bit unsigned number held as four 32-bit limbs, most significant
// first.
std::string to_decimal(std::array<std::uint32_t, 4> limbs) {
  std::string digits;
  auto is_zero = [&] { return limbs[0] == 0 && limbs[1] == 0 && limbs[2] == 0 && limbs[3] == 0; };
  while (!is_zero()) {
    std::uint64_t remainder = 0;
    for (std::uint32_t& limb : limbs) {
      const std::uint64_t current = (remainder << 32) | limb;
      limb = static_cast<std::uint32_t>(current / 10);
      remainder = current % 10;
    }
    digits.insert(digits.begin(), static_cast<char>('0' + remainder));
  }
  return digits.empty() ? "0" : digits;
}

}  // namespace

void validate_uid_root(const std::string& root) {
  bool valid = !root.empty() && root.size() <= 40 && root.front() != '.' && root.back() != '.';
  for (std::size_t k = 0; valid && k < root.size(); ++k) {
    const char c = root[k];
    const bool starts_component = k == 0 || root[k - 1] == '.';
    if (c == '.') {
      valid = root[k - 1] != '.';
    } else if (c < '0' || c > '9') {
      valid = false;
    } else if (starts_component && c == '0' && k + 1 < root.size() && root[k + 1] != '.') {
      valid = false;
    }
  }
  if (!valid) {
    throw Error("UID root '" + root + "'",
                "digits and dots, components without leading zeros, at most 40 characters "
                "(for example 1.2.826.0.1.3680043.10.1234 or 2.25)",
                "'" + root + "'");
  }
}

std::string make_dicom_uid(const std::string& root) {
  validate_uid_root(root);
  static std::random_device device;
  static std::mt19937_64 engine(
      (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
      static_cast<std::uint64_t>(
          std::chrono::high_resolution_clock::now().time_since_epoch().count()));
  std::string uid;
  if (root == "2.25") {
    std::array<std::uint32_t, 4> limbs{};
    for (std::uint32_t& limb : limbs) {
      limb = static_cast<std::uint32_t>(engine());
    }
    limbs[1] = (limbs[1] & 0xFFFF0FFFu) | 0x00004000u;  // version 4 (random)
    limbs[2] = (limbs[2] & 0x3FFFFFFFu) | 0x80000000u;  // RFC 4122 variant
    uid = root + "." + to_decimal(limbs);
  } else {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    uid = root + "." + std::to_string(micros) + "." + std::to_string(engine() % 4294967295u + 1);
  }
  CAJAL_CHECK(uid.size() <= 64) << "UID '" << uid << "' longer than 64 characters";
  return uid;
}

namespace detail {

std::vector<SourceSlice> read_source_slices(const DicomSeries& series) {
  std::vector<SourceSlice> slices;
  for (std::size_t k = 0; k < series.files.size(); ++k) {
    const auto header = read_dicom_header(series.files[k]);
    if (!header || !header->position || header->sop_instance_uid != series.sop_instance_uids[k]) {
      throw Error("reference image '" + series.files[k].string() + "'",
                  "the DICOM image with SOP Instance UID " + series.sop_instance_uids[k] +
                      " found by the scan",
                  "a file that changed since");
    }
    slices.push_back(
        {series.files[k], header->sop_class_uid, header->sop_instance_uid, *header->position});
  }
  return slices;
}

std::string format_ds(double value) {
  if (value == 0.0) {
    return "0";
  }
  char buffer[64];
  for (int precision = 12; precision >= 1; --precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    std::string text(buffer);
    if (text == "-0") {
      return "0";
    }
    if (text.size() <= 16) {
      return text;
    }
  }
  throw Error("decimal value", "a number that fits in 16 characters", std::to_string(value));
}

DicomDateTime local_date_time() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char date[16];
  char time[16];
  std::strftime(date, sizeof date, "%Y%m%d", &local);
  std::strftime(time, sizeof time, "%H%M%S", &local);
  return {date, time};
}

void copy_patient_and_study(const std::filesystem::path& source_file, DcmItem& target) {
  DcmFileFormat source;
  const OFCondition status =
      source.loadFile(source_file.c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (status.bad()) {
    throw Error("reference image '" + source_file.string() + "'", "a readable DICOM file",
                std::string("a parse error (") + status.text() + ")");
  }
  DcmDataset& dataset = *source.getDataset();
  // Type 2 attributes are written empty when the source lacks them; the others only when
  // present.
  const DcmTagKey type2[] = {DCM_PatientName,
                             DCM_PatientID,
                             DCM_PatientBirthDate,
                             DCM_PatientSex,
                             DCM_StudyDate,
                             DCM_StudyTime,
                             DCM_ReferringPhysicianName,
                             DCM_StudyID,
                             DCM_AccessionNumber,
                             DCM_PositionReferenceIndicator};
  const DcmTagKey optional[] = {DCM_SpecificCharacterSet,
                                DCM_StudyInstanceUID,
                                DCM_IssuerOfPatientID,
                                DCM_OtherPatientIDsSequence,
                                DCM_PatientAge,
                                DCM_PatientSize,
                                DCM_PatientWeight,
                                DCM_EthnicGroup,
                                DCM_StudyDescription,
                                DCM_PatientComments,
                                DCM_PatientIdentityRemoved,
                                DCM_DeidentificationMethod,
                                DCM_FrameOfReferenceUID};
  auto copy = [&](const DcmTagKey& tag, bool empty_if_missing) {
    DcmElement* element = nullptr;
    if (dataset.findAndGetElement(tag, element, OFFalse, OFTrue).good() && element != nullptr) {
      if (target.insert(element, OFTrue).bad()) {
        delete element;
      }
    } else if (empty_if_missing && !target.tagExists(tag)) {
      target.insertEmptyElement(tag);
    }
  };
  for (const DcmTagKey& tag : type2) {
    copy(tag, true);
  }
  for (const DcmTagKey& tag : optional) {
    copy(tag, false);
  }
}

void save_atomically(DcmFileFormat& file, const std::filesystem::path& path,
                     const std::string& what) {
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
  if (!std::filesystem::is_directory(folder)) {
    throw Error(what + " output folder '" + folder.string() + "'", "an existing folder", "none");
  }
  const std::filesystem::path temporary =
      folder / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()));
  const OFCondition status =
      file.saveFile(temporary.c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL,
                    EPD_withoutPadding, 0, 0, EWM_fileformat);
  if (status.bad()) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(what + " '" + path.string() + "'", "a writable file",
                std::string("a write error (") + status.text() + ")");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(what + " '" + path.string() + "'", "a file renamed into place",
                "a rename error (" + error.message() + ")");
  }
}

}  // namespace detail
}  // namespace cajal::io
