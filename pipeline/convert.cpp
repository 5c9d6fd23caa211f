#include "pipeline/convert.h"

#include "io/volume_io.h"

namespace cajal::pipeline {

core::Volume convert_volume(const std::filesystem::path& input, const std::filesystem::path& output,
                            const std::string& series_uid) {
  io::validate_output_path(output);
  core::Volume volume = io::read_volume(input, {series_uid});
  io::write_volume(volume, output);
  return volume;
}

}  // namespace cajal::pipeline
