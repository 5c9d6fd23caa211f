// The only door to ITK: reads and writes images with std-only types. Internal to io/.
#pragma once

#include <filesystem>

#include "core/volume.h"

namespace cajal::io::detail {

enum class ReaderKind { by_extension, dicom };

// Reads a 2D or 3D scalar image. Pixels come back as float with the stored pixel type recorded;
// for DICOM, rescale slope and intercept are applied by GDCM. Throws Error on failure.
core::Volume read_with_itk(const std::filesystem::path& path, ReaderKind kind);

// Writes a volume, casting to its pixel type; throws Error if a value does not fit that type.
void write_with_itk(const core::Volume& volume, const std::filesystem::path& path);

}  // namespace cajal::io::detail
