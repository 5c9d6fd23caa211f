// DICOM RT Structure Set from binary masks on a scanned series' grid (DCMTK dcmrt).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/dicom_series.h"
#include "io/structure_set.h"

namespace cajal::io {

// What was written for one ROI: the numbers the report and the SEG are checked against.
struct RtStructRoi {
  int number = 0;
  std::string name;
  std::size_t contour_count = 0;
  // SOP Instance UIDs of the slices the ROI has contours on, in slice order.
  std::vector<std::string> slice_uids;
};

struct RtStructSummary {
  std::string sop_instance_uid;
  std::string series_uid;
  std::vector<RtStructRoi> rois;
};

// Writes one ROI per structure (CLOSED_PLANAR contours traced per slice, keyholes for holes,
// on the exact planes of the series' images) to `path`, under a temporary name renamed when
// complete. Patient and study attributes are copied from the series' first image. Throws
// Error on unreadable reference images or a failed write.
RtStructSummary write_rtstruct(const DicomSeries& series,
                               const std::vector<ExportStructure>& structures,
                               const DicomWriteInfo& info, const std::filesystem::path& path);

}  // namespace cajal::io
