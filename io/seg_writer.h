// DICOM Segmentation (binary) from masks on a scanned series' grid (DCMTK dcmseg).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/dicom_series.h"
#include "io/structure_set.h"

namespace cajal::io {

struct SegSegmentSummary {
  int number = 0;
  std::string name;
  // SOP Instance UIDs of the source images of this segment's frames, in slice order.
  std::vector<std::string> slice_uids;
};

struct SegSummary {
  std::string sop_instance_uid;
  std::string series_uid;
  std::size_t frame_count = 0;
  std::vector<SegSegmentSummary> segments;
};

// Writes one segment per structure and one frame per segment and slice it occupies (frames
// that would be empty are left out), each frame referencing its source image, to `path` under a
// temporary name renamed when complete. Patient, study and frame of reference come from the
// series' first image. Throws Error on unreadable reference images or a failed write.
SegSummary write_seg(const DicomSeries& series, const std::vector<ExportStructure>& structures,
                     const DicomWriteInfo& info, const std::filesystem::path& path);

// The recommended display colour of an sRGB colour as DICOM CIELab (0..65535 each).
std::array<std::uint16_t, 3> dicom_lab_from_rgb(const RgbColor& color);

}  // namespace cajal::io
