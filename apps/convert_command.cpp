#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "core/log.h"
#include "pipeline/convert.h"

namespace cajal::apps {
namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string series_uid;
};

}  // namespace

void add_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertOptions>();
  CLI::App* command =
      app.add_subcommand("convert", "Convert a DICOM series or volume file to NIfTI, NRRD or MHA");
  command->add_option("input", options->input, "NIfTI/NRRD/MHA file, DICOM file or DICOM folder")
      ->required();
  command->add_option("output", options->output, "Output file: .nii, .nii.gz, .nrrd or .mha")
      ->required();
  command->add_option("--series", options->series_uid,
                      "SeriesInstanceUID of the series to convert in a DICOM folder");
  command->callback([options] {
    const core::Volume volume =
        pipeline::convert_volume(options->input, options->output, options->series_uid);
    const core::Index3& size = volume.geometry.size;
    core::log_info("wrote " + options->output + " (" + std::to_string(size[0]) + "x" +
                   std::to_string(size[1]) + "x" + std::to_string(size[2]) + ", " +
                   core::to_string(volume.pixel_type) + ")");
  });
}

}  // namespace cajal::apps
