// The only door to ITK: reads and writes images with std-only types. Internal to io/.
#pragma once

#include <cstddef>
#include <filesystem>

#include "core/volume.h"

namespace cajal::io::detail {

enum class ReaderKind { by_extension, dicom };

// Reads a 2D or 3D scalar image. Pixels come back as float with the stored pixel type recorded;
// for DICOM, rescale slope and intercept are applied by GDCM. Throws Error on failure.
core::Volume read_with_itk(const std::filesystem::path& path, ReaderKind kind);

// Bytes of one stored pixel of `type`.
std::size_t bytes_per_pixel(core::PixelType type);

// Pixels [begin, end) of `volume` cast to its pixel type into `out` (end - begin values in this
// machine's byte order, as ITK writes them); throws Error naming the first value that does not
// fit that type, and `path` as the file it was meant for.
void convert_pixels(const core::Volume& volume, std::size_t begin, std::size_t end, void* out,
                    const std::filesystem::path& path);

// Writes a volume to `path`, casting to its pixel type; throws Error if a value does not fit that
// type or the write fails, naming `named` (the file the caller asked for, when `path` is a
// temporary name for it).
void write_with_itk(const core::Volume& volume, const std::filesystem::path& path,
                    const std::filesystem::path& named);

}  // namespace cajal::io::detail
