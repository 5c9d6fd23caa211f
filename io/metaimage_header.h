// The text header of a MetaImage (.mha, .mhd) checked before ITK's MetaIO reads it: MetaIO trusts
// NDims and the sizes it is given (NDims 0 corrupts the heap, a negative one hangs). Internal to
// io/.
#pragma once

#include <filesystem>

namespace cajal::io::detail {

// Throws cajal::Error naming the first header field that is missing or out of range: NDims 1 to
// 4, DimSize NDims positive integers, ElementSpacing / ElementSize NDims positive finite numbers,
// Offset / Position / Origin NDims finite numbers, TransformMatrix / Rotation / Orientation
// NDims x NDims finite numbers, ElementNumberOfChannels a positive integer.
void check_metaimage_header(const std::filesystem::path& path);

}  // namespace cajal::io::detail
