// Pixels of one uncompressed DICOM slice, decoded with DCMTK straight into the caller's buffer:
// the fast path for the transfer syntaxes that need no codec. Internal to io/.
#pragma once

#include <filesystem>
#include <optional>

#include "core/volume.h"

namespace cajal::io::detail {

// Decodes `file` into dst[0 .. rows * columns) with BitsStored masking, sign extension and
// RescaleSlope/Intercept applied, and returns the pixel type GDCM would give the rescaled
// values. Returns nothing, leaving dst untouched, when the file needs GDCM (compressed transfer
// syntax, MONOCHROME1, colour, several frames, another matrix, unusual bit layout).
std::optional<core::PixelType> read_native_pixels(const std::filesystem::path& file, long rows,
                                                  long columns, float* dst);

}  // namespace cajal::io::detail
