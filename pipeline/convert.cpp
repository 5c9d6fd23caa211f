#include "pipeline/convert.h"

#include "core/error.h"
#include "io/volume_io.h"

namespace cajal::pipeline {

core::Volume convert_volume(const std::filesystem::path& input, const std::filesystem::path& output,
                            const std::string& series_uid) {
  if (!io::is_writable_volume_path(output)) {
    throw Error("output '" + output.string() + "'", "a name ending in .nii, .nii.gz, .nrrd or .mha",
                "'" + output.string() + "'");
  }
  core::Volume volume = io::read_volume(input, {series_uid});
  io::write_volume(volume, output);
  return volume;
}

}  // namespace cajal::pipeline
