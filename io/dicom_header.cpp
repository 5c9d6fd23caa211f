#include "io/dicom_header.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/oflog/oflog.h>

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
