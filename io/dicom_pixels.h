// Pixels of one uncompressed DICOM slice, decoded with DCMTK straight into the caller's buffer:
// the fast path for the transfer syntaxes that need no codec. Internal to io/.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>

#include "core/volume.h"

namespace cajal::io::detail {

// Decodes `file` into dst[0 .. rows * columns) with BitsStored masking, sign extension and
// RescaleSlope/Intercept applied, and returns the pixel type GDCM would give the rescaled
// values. Returns nothing, leaving dst untouched, when the file needs GDCM (compressed transfer
// syntax, MONOCHROME1, colour, several frames, another matrix, unusual bit layout). Throws Error
// when compressed pixel data say another matrix than Rows and Columns: GDCM's codecs abort the
// process or crash on those.
std::optional<core::PixelType> read_native_pixels(const std::filesystem::path& file, long rows,
                                                  long columns, float* dst);

// The frame size a JPEG, JPEG-LS or JPEG 2000 codestream declares (its SOF or SIZ marker), from
// the first bytes of the first fragment; nothing when it is none of these or has no such marker.
struct CodestreamFrame {
  long rows = 0;
  long columns = 0;
  long components = 0;
  const char* codec = "";
};
std::optional<CodestreamFrame> codestream_frame(const unsigned char* data, std::size_t size);

}  // namespace cajal::io::detail
