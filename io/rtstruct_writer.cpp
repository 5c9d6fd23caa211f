#include "io/rtstruct_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmrt/drtstrct.h>

#include "core/error.h"
#include "io/contour.h"
#include "io/dicom_write_common.h"

namespace cajal::io {
namespace {

// DICOM's Detached Study Management SOP Class, which RT Referenced Study Sequence names.
constexpr const char* kStudyComponentClassUid = "1.2.840.10008.3.1.2.3.1";

void require_good(const OFCondition& status, const std::string& what) {
  if (status.bad()) {
    throw Error("RT Structure Set " + what, "a valid DICOM value",
                std::string("a DCMTK error (") + status.text() + ")");
  }
}

// ContourData for one contour on slice `slice`: "x\y\z\x\y\z..." in mm, LPS.
std::string contour_data(const IndexContour& contour, const core::Geometry& geometry,
                         const detail::SourceSlice& slice) {
  const core::Vec3 row = geometry.axis_direction(0);
  const core::Vec3 column = geometry.axis_direction(1);
  std::string text;
  for (const IndexPoint& point : contour) {
    for (int axis = 0; axis < 3; ++axis) {
      const double mm = slice.position[axis] + point[0] * geometry.spacing[0] * row[axis] +
                        point[1] * geometry.spacing[1] * column[axis];
      if (!text.empty()) {
        text += '\\';
      }
      text += detail::format_ds(mm);
    }
  }
  return text;
}

std::string color_string(const RgbColor& color) {
  return std::to_string(color[0]) + "\\" + std::to_string(color[1]) + "\\" +
         std::to_string(color[2]);
}

void write_references(DRTStructureSetIOD& rt, const DicomSeries& series,
                      const std::vector<detail::SourceSlice>& slices) {
  DRTReferencedFrameOfReferenceSequence::Item* frame = nullptr;
  require_good(rt.getReferencedFrameOfReferenceSequence().addItem(frame), "frame of reference");
  require_good(frame->setFrameOfReferenceUID(series.frame_of_reference_uid.c_str()),
               "FrameOfReferenceUID");
  DRTRTReferencedStudySequence::Item* study = nullptr;
  require_good(frame->getRTReferencedStudySequence().addItem(study), "referenced study");
  require_good(study->setReferencedSOPClassUID(kStudyComponentClassUid), "study class");
  require_good(study->setReferencedSOPInstanceUID(series.study_uid.c_str()), "StudyInstanceUID");
  DRTRTReferencedSeriesSequence::Item* referenced_series = nullptr;
  require_good(study->getRTReferencedSeriesSequence().addItem(referenced_series),
               "referenced series");
  require_good(referenced_series->setSeriesInstanceUID(series.series_uid.c_str()),
               "SeriesInstanceUID");
  for (const detail::SourceSlice& slice : slices) {
    DRTContourImageSequence::Item* image = nullptr;
    require_good(referenced_series->getContourImageSequence().addItem(image), "contour image");
    require_good(image->setReferencedSOPClassUID(slice.sop_class_uid.c_str()), "image class");
    require_good(image->setReferencedSOPInstanceUID(slice.sop_instance_uid.c_str()),
                 "image instance");
  }
}

RtStructRoi write_roi(DRTStructureSetIOD& rt, const DicomSeries& series,
                      const std::vector<detail::SourceSlice>& slices,
                      const ExportStructure& structure) {
  const core::Geometry& geometry = series.geometry;
  const std::string number = std::to_string(structure.number);
  DRTStructureSetROISequence::Item* roi = nullptr;
  require_good(rt.getStructureSetROISequence().addItem(roi), "ROI");
  require_good(roi->setROINumber(number.c_str()), "ROINumber");
  require_good(roi->setReferencedFrameOfReferenceUID(series.frame_of_reference_uid.c_str()),
               "ReferencedFrameOfReferenceUID");
  require_good(roi->setROIName(structure.name.c_str()), "ROIName '" + structure.name + "'");
  require_good(roi->setROIGenerationAlgorithm("AUTOMATIC"), "ROIGenerationAlgorithm");

  DRTROIContourSequence::Item* roi_contour = nullptr;
  require_good(rt.getROIContourSequence().addItem(roi_contour), "ROI contour");
  require_good(roi_contour->setReferencedROINumber(number.c_str()), "ReferencedROINumber");
  require_good(roi_contour->setROIDisplayColor(color_string(structure.color).c_str()),
               "ROIDisplayColor");
  RtStructRoi written{structure.number, structure.name, 0, {}};
  const auto slice_size = static_cast<std::size_t>(geometry.size[0] * geometry.size[1]);
  for (std::size_t k = 0; k < slices.size(); ++k) {
    const auto begin = structure.mask.begin() + static_cast<std::ptrdiff_t>(k * slice_size);
    const std::vector<std::uint8_t> slice_mask(begin,
                                               begin + static_cast<std::ptrdiff_t>(slice_size));
    const std::vector<IndexContour> contours =
        trace_slice_contours(slice_mask, geometry.size[0], geometry.size[1]);
    if (contours.empty()) {
      continue;
    }
    written.slice_uids.push_back(slices[k].sop_instance_uid);
    for (const IndexContour& contour : contours) {
      DRTContourSequence::Item* item = nullptr;
      require_good(roi_contour->getContourSequence().addItem(item), "contour");
      ++written.contour_count;
      require_good(item->setContourNumber(std::to_string(written.contour_count).c_str()),
                   "ContourNumber");
      DRTContourImageSequence::Item* image = nullptr;
      require_good(item->getContourImageSequence().addItem(image), "contour image");
      require_good(image->setReferencedSOPClassUID(slices[k].sop_class_uid.c_str()), "image class");
      require_good(image->setReferencedSOPInstanceUID(slices[k].sop_instance_uid.c_str()),
                   "image instance");
      require_good(item->setContourGeometricType("CLOSED_PLANAR"), "ContourGeometricType");
      require_good(item->setNumberOfContourPoints(std::to_string(contour.size()).c_str()),
                   "NumberOfContourPoints");
      require_good(item->setContourData(contour_data(contour, geometry, slices[k]).c_str()),
                   "ContourData");
    }
  }
  DRTRTROIObservationsSequence::Item* observation = nullptr;
  require_good(rt.getRTROIObservationsSequence().addItem(observation), "ROI observation");
  require_good(observation->setObservationNumber(number.c_str()), "ObservationNumber");
  require_good(observation->setReferencedROINumber(number.c_str()), "ReferencedROINumber");
  require_good(observation->setRTROIInterpretedType("ORGAN"), "RTROIInterpretedType");
  require_good(observation->setROIInterpreter(""), "ROIInterpreter");
  return written;
}

}  // namespace

RtStructSummary write_rtstruct(const DicomSeries& series,
                               const std::vector<ExportStructure>& structures,
                               const DicomWriteInfo& info, const std::filesystem::path& path) {
  CAJAL_CHECK(series.problem.empty()) << "series " << series.series_uid << ": " << series.problem;
  const std::vector<detail::SourceSlice> slices = detail::read_source_slices(series);
  const detail::DicomDateTime now = detail::local_date_time();
  const std::string date = info.date.empty() ? now.date : info.date;
  const std::string time = info.time.empty() ? now.time : info.time;

  DcmFileFormat source;
  require_good(source.loadFile(slices.front().file.c_str(), EXS_Unknown, EGL_noChange, 4096),
               "reference image '" + slices.front().file.string() + "'");
  DRTStructureSetIOD rt;
  require_good(rt.readPatientData(*source.getDataset()), "patient attributes");
  require_good(rt.readStudyData(*source.getDataset()), "study attributes");

  RtStructSummary summary;
  summary.sop_instance_uid = make_dicom_uid(info.uid_root);
  summary.series_uid = make_dicom_uid(info.uid_root);
  require_good(rt.setSOPClassUID(UID_RTStructureSetStorage), "SOPClassUID");
  require_good(rt.setSOPInstanceUID(summary.sop_instance_uid.c_str()), "SOPInstanceUID");
  require_good(rt.setModality("RTSTRUCT"), "Modality");
  require_good(rt.setSeriesInstanceUID(summary.series_uid.c_str()), "SeriesInstanceUID");
  require_good(rt.setSeriesNumber(info.series_number.c_str()), "SeriesNumber");
  require_good(rt.setSeriesDescription(info.series_description.c_str()), "SeriesDescription");
  require_good(rt.setSeriesDate(date.c_str()), "SeriesDate");
  require_good(rt.setSeriesTime(time.c_str()), "SeriesTime");
  require_good(rt.setInstanceNumber("1"), "InstanceNumber");
  require_good(rt.setInstanceCreationDate(date.c_str()), "InstanceCreationDate");
  require_good(rt.setInstanceCreationTime(time.c_str()), "InstanceCreationTime");
  require_good(rt.setManufacturer("cajal"), "Manufacturer");
  require_good(rt.setManufacturerModelName("cajal"), "ManufacturerModelName");
  if (!info.software_version.empty()) {
    require_good(rt.setSoftwareVersions(info.software_version.c_str()), "SoftwareVersions");
  }
  require_good(rt.setStructureSetLabel(info.label.c_str()),
               "StructureSetLabel '" + info.label + "'");
  require_good(rt.setStructureSetName(info.label.c_str()), "StructureSetName");
  require_good(rt.setStructureSetDate(date.c_str()), "StructureSetDate");
  require_good(rt.setStructureSetTime(time.c_str()), "StructureSetTime");

  write_references(rt, series, slices);
  for (const ExportStructure& structure : structures) {
    CAJAL_CHECK(structure.mask.size() == static_cast<std::size_t>(series.geometry.voxel_count()))
        << "structure '" << structure.name << "' mask of " << structure.mask.size() << " voxels";
    summary.rois.push_back(write_roi(rt, series, slices, structure));
    CAJAL_CHECK(summary.rois.back().contour_count > 0)
        << "structure '" << structure.name << "' is empty; callers leave empty structures out";
  }

  DcmFileFormat file;
  require_good(rt.write(*file.getDataset()), "dataset");
  detail::copy_patient_and_study(slices.front().file, *file.getDataset());
  detail::save_atomically(file, path, "RT Structure Set");
  return summary;
}

}  // namespace cajal::io
