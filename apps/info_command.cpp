#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "pipeline/describe.h"

namespace cajal::apps {
namespace {

struct InfoOptions {
  std::string path;
  std::string series_uid;
  bool json = false;
};

}  // namespace

void add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* command = app.add_subcommand(
      "info", "Describe a volume file, a DICOM file, or the image series in a DICOM folder");
  command->add_option("path", options->path, "NIfTI/NRRD/MHA file, DICOM file or DICOM folder")
      ->required();
  command->add_option("--series", options->series_uid,
                      "SeriesInstanceUID of the series to describe in a DICOM folder");
  command->add_flag("--json", options->json, "Print JSON instead of text");
  command->callback([options] {
    const pipeline::InputDescription description =
        pipeline::describe_input(options->path, options->series_uid);
    if (options->json) {
      std::cout << pipeline::to_json(description).dump(2) << "\n";
    } else {
      std::cout << pipeline::to_text(description);
    }
  });
}

}  // namespace cajal::apps
