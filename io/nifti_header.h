// The NIfTI header's sform, read directly: ITK 5.2 prefers the qform when both codes are set,
// while FSL, SPM, nibabel and MRIcron use the sform, so files whose two forms disagree would be
// placed differently by cajal than by every tool that wrote them. Internal to io/.
#pragma once

#include <cstddef>
#include <cstdint>
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

// NIfTI-1 holds each size as a 16-bit integer; its voxels follow 348 header bytes and 4 extension
// bytes in a single-file .nii.
constexpr std::int64_t kNifti1LargestSize = 32767;
constexpr std::size_t kNifti1VoxelOffset = 352;

// The header of a single-file NIfTI-1 (its first kNifti1VoxelOffset bytes) of `slices` slices,
// made from `one_slice`, the whole .nii (in this machine's byte order) that ITK wrote for one
// slice of size0 x size1 voxels of `voxel_bytes` each: nothing else in such a header depends on
// the slice count. Throws cajal::InternalError when `one_slice` is not that file.
std::string nifti1_header_of_slices(const std::string& one_slice, std::int64_t size0,
                                    std::int64_t size1, std::size_t voxel_bytes,
                                    std::int64_t slices);

}  // namespace cajal::io::detail
