// Volumes to and from files: NIfTI, NRRD, MHA and DICOM series, through ITK (GDCM inside).
// The SimpleITK lesson: a thin procedural facade; no itk:: type leaves io/*.cpp.
#pragma once

#include <filesystem>
#include <string>

#include "core/volume.h"

namespace cajal::io {

struct ReadOptions {
  // For a DICOM folder holding several image series: the SeriesInstanceUID to read.
  std::string series_uid;
};

enum class InputKind { dicom_folder, dicom_file, volume_file };

// What `path` is, by extension and DICOM magic; throws Error when it does not exist or is of no
// format cajal reads.
InputKind classify_input(const std::filesystem::path& path);
std::string to_string(InputKind kind);

// Reads a volume file (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd), a single DICOM file, or a folder
// holding a DICOM series. Geometry comes back in LPS. Throws Error on anything unreadable.
core::Volume read_volume(const std::filesystem::path& path, const ReadOptions& options = {});

// Writes .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd, casting pixels to volume.pixel_type. The file
// is written under a temporary name in the same folder and renamed into place when complete.
void write_volume(const core::Volume& volume, const std::filesystem::path& path);

// Throws Error unless write_volume could write `path`: a known extension, in an existing folder,
// not naming a folder.
void validate_output_path(const std::filesystem::path& path);

// Whether the extension names a format write_volume can write.
bool is_writable_volume_path(const std::filesystem::path& path);

}  // namespace cajal::io
