#include <iostream>
#include <memory>
#include <sstream>

#include "apps/commands.h"
#include "core/error.h"
#include "pipeline/phantom.h"

namespace cajal::apps {
namespace {

struct PhantomArguments {
  pipeline::PhantomOptions options;
  std::string size = "512x512x300";
  std::string spacing;
};

// "AxBxC" as numbers.
std::vector<double> parse_numbers(const std::string& text, const std::string& what) {
  std::vector<double> values;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, 'x')) {
    try {
      std::size_t used = 0;
      values.push_back(std::stod(part, &used));
      if (used != part.size()) {
        values.clear();
        break;
      }
    } catch (const std::exception&) {
      values.clear();
      break;
    }
  }
  if (values.empty()) {
    throw Error(what, "numbers separated by 'x'", "'" + text + "'");
  }
  return values;
}

void apply(PhantomArguments& arguments) {
  const std::vector<double> size = parse_numbers(arguments.size, "--size");
  if (size.size() != 3) {
    throw Error("--size", "three voxel counts, e.g. 512x512x300", "'" + arguments.size + "'");
  }
  for (int c = 0; c < 3; ++c) {
    arguments.options.size[c] = static_cast<std::int64_t>(size[c]);
    if (static_cast<double>(arguments.options.size[c]) != size[c]) {
      throw Error("--size", "whole voxel counts", "'" + arguments.size + "'");
    }
  }
  if (!arguments.spacing.empty()) {
    const std::vector<double> spacing = parse_numbers(arguments.spacing, "--spacing");
    if (spacing.size() == 2) {
      arguments.options.in_plane_spacing = spacing[0];
      arguments.options.slice_thickness = spacing[1];
    } else if (spacing.size() == 3 && spacing[0] == spacing[1]) {
      arguments.options.in_plane_spacing = spacing[0];
      arguments.options.slice_thickness = spacing[2];
    } else {
      throw Error("--spacing", "IN_PLANExTHICKNESS or SxSxTHICKNESS in mm, e.g. 0.8x2.5",
                  "'" + arguments.spacing + "'");
    }
  }
}

}  // namespace

void add_phantom_command(CLI::App& app) {
  auto arguments = std::make_shared<PhantomArguments>();
  pipeline::PhantomOptions& options = arguments->options;
  CLI::App* command = app.add_subcommand(
      "phantom", "Generate synthetic CT studies of the torso with ground-truth organ labels");
  command->add_option("-o,--output", options.output, "Folder to write the cases into")->required();
  command->add_option("--count", options.count, "Number of cases")->capture_default_str();
  command->add_option("--seed", options.seed, "Random seed: same seed and options, same bytes")
      ->capture_default_str();
  command->add_option("--size", arguments->size, "Voxels left-right x anterior-posterior x slices")
      ->capture_default_str();
  command->add_option("--spacing", arguments->spacing,
                      "IN_PLANExTHICKNESS in mm (default: varies, 0.6-1.0 x 1-5)");
  command
      ->add_option("--orientation", options.orientation,
                   "Stored orientation code (LPS, RAS, LIP, ...) or 'vary'")
      ->capture_default_str();
  command->add_flag("--dicom", options.write_dicom, "Also write each CT as a DICOM series");
  command->add_flag("--lesions", options.lesions,
                    "Add benign and malignant lesions to the liver, spleen, kidneys and lungs, "
                    "with lesions.nii.gz, lesions.json and lesions.csv (docs/phantom.md)");
  command->add_flag("--nifti,!--no-nifti", options.write_nifti,
                    "Write ct.nii.gz (default on; labels are always written)");
  command
      ->add_option("--threads", options.threads,
                   "Threads per case (the output does not depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  command->callback([arguments] {
    apply(*arguments);
    for (const auto& folder : pipeline::run_phantom(arguments->options)) {
      std::cout << folder.string() << "\n";
    }
  });
}

}  // namespace cajal::apps
