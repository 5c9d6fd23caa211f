// The NIfTI header's sform, read directly: ITK 5.2 prefers the qform when both codes are set,
// while FSL, SPM, nibabel and MRIcron use the sform, so files whose two forms disagree would be
// placed differently by cajal than by every tool that wrote them. Internal to io/.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/geometry.h"

namespace cajal::io::detail {

struct NiftiSform {
  int sform_code = 0;
  int qform_code = 0;
  // The sform as geometry in LPS (origin, spacing, direction), valid when it has orthogonal axes.
  std::optional<core::Geometry> geometry;
  // Header fields ITK would build its matrices from that are not finite numbers (pixdim[1..3],
  // the qform's quaternion and offsets when qform_code > 0, srow when sform_code > 0): ITK's VNL
  // aborts the process on them.
  std::vector<std::string> not_finite;
};

// Reads the header of a .nii or .nii.gz file (NIfTI-1 or NIfTI-2, either byte order). Returns
// nothing when the file is not NIfTI. The size is left as zero.
std::optional<NiftiSform> read_nifti_sform(const std::filesystem::path& path);

}  // namespace cajal::io::detail
