#include "io/seg_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "io/dicom_write_common.h"

namespace cajal::io {
namespace {

void require_good(const OFCondition& status, const std::string& what) {
  if (status.bad()) {
    throw Error("Segmentation " + what, "a valid DICOM value",
                std::string("a DCMTK error (") + status.text() + ")");
  }
}

// Category of every segment (DICOM CID 7150): SCT 123037004 "Anatomical Structure".
CodeSequenceMacro anatomical_structure_category() {
  return CodeSequenceMacro("123037004", "SCT", "Anatomical Structure");
}

CodeSequenceMacro property_type(const ExportStructure& structure) {
  if (structure.anatomy) {
    return CodeSequenceMacro(structure.anatomy->value.c_str(), structure.anatomy->scheme.c_str(),
                             structure.anatomy->meaning.c_str());
  }
  // No standard code: cajal's private coding scheme, the label number as value.
  return CodeSequenceMacro(("L" + std::to_string(structure.number)).c_str(), "99CAJAL",
                           structure.name.c_str());
}

void add_shared_groups(DcmSegmentation& seg, const core::Geometry& geometry) {
  FGPixelMeasures measures;
  const std::string spacing =
      detail::format_ds(geometry.spacing[1]) + "\\" + detail::format_ds(geometry.spacing[0]);
  require_good(measures.setPixelSpacing(spacing.c_str()), "PixelSpacing");
  require_good(measures.setSliceThickness(detail::format_ds(geometry.spacing[2]).c_str()),
               "SliceThickness");
  require_good(measures.setSpacingBetweenSlices(detail::format_ds(geometry.spacing[2]).c_str()),
               "SpacingBetweenSlices");
  require_good(seg.addForAllFrames(measures), "pixel measures");
  const core::Vec3 row = geometry.axis_direction(0);
  const core::Vec3 column = geometry.axis_direction(1);
  std::unique_ptr<FGPlaneOrientationPatient> orientation(FGPlaneOrientationPatient::createMinimal(
      detail::format_ds(row[0]).c_str(), detail::format_ds(row[1]).c_str(),
      detail::format_ds(row[2]).c_str(), detail::format_ds(column[0]).c_str(),
      detail::format_ds(column[1]).c_str(), detail::format_ds(column[2]).c_str()));
  CAJAL_CHECK(orientation != nullptr) << "plane orientation functional group not created";
  require_good(seg.addForAllFrames(*orientation), "plane orientation");
}

// ContentLabel is a code string: upper-case letters, digits, space and underscore.
std::string content_label(const std::string& label) {
  std::string text;
  for (char c : label.substr(0, 16)) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_';
    const bool lower = c >= 'a' && c <= 'z';
    text += keep ? c : lower ? static_cast<char>(c - 'a' + 'A') : '_';
  }
  return text.empty() ? "CAJAL" : text;
}

// Binary frames packed as DICOM requires: one bit per pixel, least significant bit first, frame
// after frame with no padding between them (PS3.5 8.1.1). DCMTK 3.6.7 misplaces frames whose
// pixel count is not a multiple of 8 when it concatenates them, so cajal packs them itself.
std::vector<Uint8> pack_binary_frames(const std::vector<std::vector<Uint8>>& frames) {
  std::size_t bit_count = 0;
  for (const std::vector<Uint8>& frame : frames) {
    bit_count += frame.size();
  }
  std::vector<Uint8> packed((bit_count + 7) / 8 + ((bit_count + 7) / 8) % 2, 0);
  std::size_t bit = 0;
  for (const std::vector<Uint8>& frame : frames) {
    for (Uint8 value : frame) {
      if (value != 0) {
        packed[bit / 8] = static_cast<Uint8>(packed[bit / 8] | (1u << (bit % 8)));
      }
      ++bit;
    }
  }
  return packed;
}

}  // namespace

std::array<std::uint16_t, 3> dicom_lab_from_rgb(const RgbColor& color) {
  double l = 0;
  double a = 0;
  double b = 0;
  IODCIELabUtil::rgb2DicomLab(l, a, b, color[0] / 255.0, color[1] / 255.0, color[2] / 255.0);
  auto to_u16 = [](double v) {
    return static_cast<std::uint16_t>(std::clamp(std::lround(v), 0L, 65535L));
  };
  return {to_u16(l), to_u16(a), to_u16(b)};
}

SegSummary write_seg(const DicomSeries& series, const std::vector<ExportStructure>& structures,
                     const DicomWriteInfo& info, const std::filesystem::path& path) {
  CAJAL_CHECK(series.problem.empty()) << "series " << series.series_uid << ": " << series.problem;
  const std::vector<detail::SourceSlice> slices = detail::read_source_slices(series);
  const core::Geometry& geometry = series.geometry;
  const detail::DicomDateTime now = detail::local_date_time();
  const std::string date = info.date.empty() ? now.date : info.date;
  const std::string time = info.time.empty() ? now.time : info.time;

  IODGeneralEquipmentModule::EquipmentInfo equipment(
      "cajal", "cajal", "0",
      info.software_version.empty() ? "unknown" : info.software_version.c_str());
  ContentIdentificationMacro content("1", content_label(info.label).c_str(), "cajal segmentation",
                                     "");
  DcmSegmentation* created = nullptr;
  require_good(DcmSegmentation::createBinarySegmentation(
                   created, static_cast<Uint16>(geometry.size[1]),
                   static_cast<Uint16>(geometry.size[0]), equipment, content),
               "object");
  std::unique_ptr<DcmSegmentation> seg(created);
  require_good(seg->importFromSourceImage(slices.front().file.c_str()),
               "patient, study and frame of reference from '" + slices.front().file.string() + "'");

  SegSummary summary;
  summary.sop_instance_uid = make_dicom_uid(info.uid_root);
  summary.series_uid = make_dicom_uid(info.uid_root);
  require_good(seg->getSOPCommon().setSOPInstanceUID(summary.sop_instance_uid.c_str()),
               "SOPInstanceUID");
  require_good(seg->getSeries().setSeriesInstanceUID(summary.series_uid.c_str()),
               "SeriesInstanceUID");
  require_good(seg->getSeries().setSeriesNumber(info.series_number.c_str()), "SeriesNumber");
  require_good(seg->getSeries().setSeriesDescription(info.series_description.c_str()),
               "SeriesDescription");
  require_good(seg->getSeries().setSeriesDate(date.c_str()), "SeriesDate");
  require_good(seg->getSeries().setSeriesTime(time.c_str()), "SeriesTime");
  require_good(seg->getGeneralImage().setContentDate(date.c_str()), "ContentDate");
  require_good(seg->getGeneralImage().setContentTime(time.c_str()), "ContentTime");

  add_shared_groups(*seg, geometry);
  const std::string dimension_uid = make_dicom_uid(info.uid_root);
  require_good(seg->getDimensions().addDimensionIndex(
                   DCM_ReferencedSegmentNumber, dimension_uid.c_str(),
                   DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
               "segment dimension");
  require_good(
      seg->getDimensions().addDimensionIndex(DCM_ImagePositionPatient, dimension_uid.c_str(),
                                             DCM_PlanePositionSequence, "ImagePositionPatient"),
      "position dimension");

  const auto slice_size = static_cast<std::size_t>(geometry.size[0] * geometry.size[1]);
  std::vector<bool> referenced(slices.size(), false);
  std::vector<std::vector<Uint8>> frames;
  for (const ExportStructure& structure : structures) {
    CAJAL_CHECK(structure.mask.size() == static_cast<std::size_t>(geometry.voxel_count()))
        << "structure '" << structure.name << "' mask of " << structure.mask.size() << " voxels";
    DcmSegment* segment = nullptr;
    require_good(
        DcmSegment::create(segment, structure.name.c_str(), anatomical_structure_category(),
                           property_type(structure), DcmSegTypes::SAT_AUTOMATIC, "cajal"),
        "segment '" + structure.name + "'");
    const auto lab = dicom_lab_from_rgb(structure.color);
    require_good(segment->setRecommendedDisplayCIELabValue(lab[0], lab[1], lab[2]),
                 "RecommendedDisplayCIELabValue");
    Uint16 segment_number = 0;
    const OFCondition added = seg->addSegment(segment, segment_number);
    if (added.bad()) {
      delete segment;
      require_good(added, "segment '" + structure.name + "'");
    }
    SegSegmentSummary written{segment_number, structure.name, {}};
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const auto begin = structure.mask.begin() + static_cast<std::ptrdiff_t>(k * slice_size);
      const auto end = begin + static_cast<std::ptrdiff_t>(slice_size);
      if (std::none_of(begin, end, [](std::uint8_t v) { return v != 0; })) {
        continue;
      }
      std::vector<Uint8> frame(begin, end);
      const detail::SourceSlice& source = slices[k];
      std::unique_ptr<FGPlanePosPatient> position(
          FGPlanePosPatient::createMinimal(detail::format_ds(source.position[0]).c_str(),
                                           detail::format_ds(source.position[1]).c_str(),
                                           detail::format_ds(source.position[2]).c_str()));
      CAJAL_CHECK(position != nullptr) << "plane position functional group not created";
      FGFrameContent frame_content;
      require_good(frame_content.setDimensionIndexValues(segment_number, 0), "dimension index");
      require_good(frame_content.setDimensionIndexValues(static_cast<Uint32>(k + 1), 1),
                   "dimension index");
      ImageSOPInstanceReferenceMacro* image = nullptr;
      require_good(ImageSOPInstanceReferenceMacro::create(source.sop_class_uid.c_str(),
                                                          source.sop_instance_uid.c_str(), image),
                   "source image reference");
      OFVector<ImageSOPInstanceReferenceMacro> images;
      images.push_back(*image);
      delete image;
      std::unique_ptr<FGDerivationImage> derivation(
          DcmSegmentation::createDerivationImageFG(images, "Segmentation by cajal"));
      CAJAL_CHECK(derivation != nullptr) << "derivation image functional group not created";
      OFVector<FGBase*> groups;
      groups.push_back(position.get());
      groups.push_back(&frame_content);
      groups.push_back(derivation.get());
      require_good(seg->addFrame(frame.data(), segment_number, groups),
                   "frame of segment '" + structure.name + "'");
      frames.push_back(std::move(frame));
      written.slice_uids.push_back(source.sop_instance_uid);
      referenced[k] = true;
      ++summary.frame_count;
    }
    CAJAL_CHECK(!written.slice_uids.empty())
        << "structure '" << structure.name << "' is empty; callers leave empty structures out";
    summary.segments.push_back(std::move(written));
  }

  IODReferences references;
  OFVector<OFString> files;
  for (std::size_t k = 0; k < slices.size(); ++k) {
    if (referenced[k]) {
      files.push_back(slices[k].file.c_str());
    }
  }
  CAJAL_CHECK(references.addFromFiles(files, IODReference::LEVEL_STUDY) == files.size())
      << "could not reference every source image";
  seg->getCommonInstanceReference().addReferences(references, series.study_uid.c_str());

  DcmFileFormat file;
  require_good(seg->writeDataset(*file.getDataset()), "dataset");
  const std::vector<Uint8> pixels = pack_binary_frames(frames);
  require_good(file.getDataset()->putAndInsertUint8Array(DCM_PixelData, pixels.data(),
                                                         static_cast<unsigned long>(pixels.size())),
               "PixelData");
  detail::copy_patient_and_study(slices.front().file, *file.getDataset());
  detail::save_atomically(file, path, "Segmentation");
  return summary;
}

}  // namespace cajal::io
