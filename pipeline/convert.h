// `cajal convert`: any supported input to NIfTI, NRRD or MHA, pixel type and geometry kept.
#pragma once

#include <filesystem>
#include <string>

#include "core/volume.h"

namespace cajal::pipeline {

// Reads `input` (choosing `series_uid` in a DICOM folder) and writes it to `output`. The output
// path is checked before anything is read, so a bad one fails fast. Returns what was written.
core::Volume convert_volume(const std::filesystem::path& input, const std::filesystem::path& output,
                            const std::string& series_uid);

}  // namespace cajal::pipeline
