#include "io/dicom_header.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/oflog/oflog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>

#include "core/error.h"

namespace cajal::io::detail {
namespace {

void silence_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] { OFLog::configure(OFLogger::FATAL_LOG_LEVEL); });
}

std::string get_string(DcmDataset& dataset, const DcmTagKey& tag) {
  OFString value;
  if (dataset.findAndGetOFStringArray(tag, value).good()) {
    return value.c_str();
  }
  return {};
}

template <std::size_t N>
std::optional<std::array<double, N>> get_doubles(DcmDataset& dataset, const DcmTagKey& tag) {
  std::array<double, N> values{};
  for (std::size_t i = 0; i < N; ++i) {
    Float64 value = 0;
    if (dataset.findAndGetFloat64(tag, value, static_cast<unsigned long>(i)).bad()) {
      return std::nullopt;
    }
    values[i] = value;
  }
  return values;
}

std::optional<double> get_double(DcmDataset& dataset, const DcmTagKey& tag) {
  Float64 value = 0;
  if (dataset.findAndGetFloat64(tag, value).good()) {
    return value;
  }
  return std::nullopt;
}

std::string sop_class_name(const std::string& uid) {
  const char* name = dcmFindNameOfUID(uid.c_str());
  return name != nullptr ? std::string(name) : "SOP Class " + uid;
}

}  // namespace

bool has_dicom_magic(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char buffer[132] = {};
  in.read(buffer, sizeof buffer);
  return in.gcount() == sizeof buffer && std::string(buffer + 128, 4) == "DICM";
}

std::optional<DicomHeader> read_dicom_header(const std::filesystem::path& file) {
  silence_dcmtk();
  const bool magic = has_dicom_magic(file);
  DcmFileFormat format;
  // Values longer than 256 bytes (pixel data above all) are not loaded, only located.
  const OFCondition status =
      format.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_autoDetect);
  if (status.bad()) {
    if (!magic) {
      return std::nullopt;
    }
    throw Error("DICOM file '" + file.string() + "'", "a readable DICOM dataset",
                std::string("a parse error (") + status.text() + ")");
  }
  DcmDataset& dataset = *format.getDataset();
  DicomHeader header;
  header.file = file;
  header.sop_class_uid = get_string(dataset, DCM_SOPClassUID);
  if (header.sop_class_uid.empty() && format.getMetaInfo() != nullptr) {
    // A DICOMDIR names its class only in the file meta header.
    OFString media_class;
    if (format.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, media_class).good()) {
      header.sop_class_uid = media_class.c_str();
    }
  }
  header.series_uid = get_string(dataset, DCM_SeriesInstanceUID);
  if (!magic && (header.sop_class_uid.empty() || header.series_uid.empty())) {
    return std::nullopt;  // parsed as something, but not a DICOM object
  }
  header.sop_instance_uid = get_string(dataset, DCM_SOPInstanceUID);
  header.study_uid = get_string(dataset, DCM_StudyInstanceUID);
  header.frame_of_reference_uid = get_string(dataset, DCM_FrameOfReferenceUID);
  header.modality = get_string(dataset, DCM_Modality);
  header.series_description = get_string(dataset, DCM_SeriesDescription);
  header.series_number = get_string(dataset, DCM_SeriesNumber);
  header.patient_id = get_string(dataset, DCM_PatientID);
  header.patient_name = get_string(dataset, DCM_PatientName);
  header.study_date = get_string(dataset, DCM_StudyDate);
  header.image_type = get_string(dataset, DCM_ImageType);
  header.has_pixel_data = dataset.tagExists(DCM_PixelData);
  Uint16 value = 0;
  if (dataset.findAndGetUint16(DCM_Rows, value).good()) {
    header.rows = value;
  }
  if (dataset.findAndGetUint16(DCM_Columns, value).good()) {
    header.columns = value;
  }
  for (auto [tag, field] : {std::pair{DCM_SamplesPerPixel, &header.samples_per_pixel},
                            std::pair{DCM_BitsAllocated, &header.bits_allocated},
                            std::pair{DCM_BitsStored, &header.bits_stored}}) {
    if (dataset.findAndGetUint16(tag, value).good()) {
      *field = value;
    }
  }
  header.photometric = get_string(dataset, DCM_PhotometricInterpretation);
  Sint32 frames = 1;
  if (dataset.findAndGetSint32(DCM_NumberOfFrames, frames).good()) {
    header.number_of_frames = frames;
    header.has_number_of_frames = true;
  }
  DcmElement* offsets = nullptr;
  if (dataset.findAndGetElement(DCM_GridFrameOffsetVector, offsets).good() && offsets != nullptr) {
    header.grid_frame_offsets = offsets->getVM();
  }
  header.position = get_doubles<3>(dataset, DCM_ImagePositionPatient);
  header.orientation = get_doubles<6>(dataset, DCM_ImageOrientationPatient);
  header.pixel_spacing = get_doubles<2>(dataset, DCM_PixelSpacing);
  header.slice_thickness = get_double(dataset, DCM_SliceThickness);
  header.spacing_between_slices = get_double(dataset, DCM_SpacingBetweenSlices);
  const auto finite = [](const auto& values) {
    return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
  };
  const std::array<std::pair<const char*, bool>, 5> geometry = {{
      {"ImagePositionPatient", !header.position || finite(*header.position)},
      {"ImageOrientationPatient", !header.orientation || finite(*header.orientation)},
      {"PixelSpacing", !header.pixel_spacing || finite(*header.pixel_spacing)},
      {"SliceThickness", !header.slice_thickness || std::isfinite(*header.slice_thickness)},
      {"SpacingBetweenSlices",
       !header.spacing_between_slices || std::isfinite(*header.spacing_between_slices)},
  }};
  for (const auto& [name, ok] : geometry) {
    if (!ok) {
      header.not_finite.emplace_back(name);
    }
  }
  return header;
}

std::string why_not_an_image_slice(const DicomHeader& header) {
  if (!header.has_pixel_data || header.rows <= 0 || header.columns <= 0) {
    return "not an image (" + sop_class_name(header.sop_class_uid) + ")";
  }
  if (header.number_of_frames > 1) {
    return "a multi-frame object (" + sop_class_name(header.sop_class_uid) + ", " +
           std::to_string(header.number_of_frames) +
           " frames), which cajal does not read as a series";
  }
  // What GDCM's pixel reader aborts the process on (asserts), and what cajal would refuse after
  // it anyway (colour), is refused here from the header.
  if (header.samples_per_pixel.value_or(1) != 1 || header.photometric == "PALETTE COLOR") {
    return "a colour image (" + sop_class_name(header.sop_class_uid) + ", SamplesPerPixel " +
           std::to_string(header.samples_per_pixel.value_or(1)) + ", PhotometricInterpretation " +
           (header.photometric.empty() ? "none" : header.photometric) +
           "); cajal reads grayscale images, 1 sample per pixel";
  }
  if (header.bits_allocated && *header.bits_allocated != 8 && *header.bits_allocated != 16 &&
      *header.bits_allocated != 32) {
    return "BitsAllocated " + std::to_string(*header.bits_allocated) +
           "; cajal reads 8, 16 or 32 bits per pixel";
  }
  if (header.bits_stored &&
      (*header.bits_stored == 0 || *header.bits_stored > header.bits_allocated.value_or(32))) {
    return "BitsStored " + std::to_string(*header.bits_stored) + " with BitsAllocated " +
           (header.bits_allocated ? std::to_string(*header.bits_allocated) : "missing") +
           " (stored bits must be 1 to BitsAllocated)";
  }
  if (header.bits_allocated == 32 && header.bits_stored && *header.bits_stored != 32) {
    // GDCM masks unused bits of 16-bit pixels only; on 32-bit ones it asserts.
    return "BitsStored " + std::to_string(*header.bits_stored) +
           " with BitsAllocated 32, which GDCM cannot read (it needs all 32 bits stored)";
  }
  if (!header.not_finite.empty()) {
    std::string names;
    for (const std::string& name : header.not_finite) {
      names += (names.empty() ? "" : ", ") + name;
    }
    return names + " holding a value that is not a finite number";
  }
  if (header.grid_frame_offsets &&
      (!header.has_number_of_frames || *header.grid_frame_offsets < 2)) {
    // GDCM takes the slice spacing of a dose grid from the first two offsets and the frame count
    // from NumberOfFrames, and aborts the process (an assert) when either is not there.
    const unsigned long count = *header.grid_frame_offsets;
    return "a dose grid (" + sop_class_name(header.sop_class_uid) + ") with " +
           std::to_string(count) + (count == 1 ? " value" : " values") +
           " in GridFrameOffsetVector and " +
           (header.has_number_of_frames
                ? "NumberOfFrames " + std::to_string(header.number_of_frames)
                : std::string("no NumberOfFrames")) +
           ", which GDCM cannot read (it needs NumberOfFrames and at least 2 offsets)";
  }
  if (header.series_uid.empty()) {
    return "no SeriesInstanceUID";
  }
  if (!header.position || !header.orientation) {
    return "no ImagePositionPatient or ImageOrientationPatient (" +
           sop_class_name(header.sop_class_uid) + ")";
  }
  return {};
}

}  // namespace cajal::io::detail
