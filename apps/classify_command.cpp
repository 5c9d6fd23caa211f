#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "apps/batch_summary.h"
#include "apps/commands.h"
#include "core/error.h"
#include "pipeline/classify.h"

namespace cajal::apps {
namespace {

struct ClassifyArguments {
  std::vector<std::string> inputs;
  std::string manifest;
  std::string outdir;
  std::string model;
  std::string roi;
  int label = -1;
  std::string centre;
  std::string size;
  std::string calibrate;
  bool no_png = false;
  pipeline::ClassifyOptions options;
};

// "X,Y,Z" (mm), or with `cube` a single number for all three.
core::Vec3 parse_vec3(const std::string& option, const std::string& text, bool cube) {
  std::vector<double> values;
  std::stringstream cells(text);
  for (std::string cell; std::getline(cells, cell, ',');) {
    try {
      std::size_t used = 0;
      values.push_back(std::stod(cell, &used));
      if (used != cell.size()) {
        values.clear();
        break;
      }
    } catch (const std::exception&) {
      values.clear();
      break;
    }
  }
  if (cube && values.size() == 1) {
    return {values[0], values[0], values[0]};
  }
  if (values.size() != 3) {
    throw Error(option, cube ? "S or SX,SY,SZ in mm" : "X,Y,Z in mm (LPS)", "'" + text + "'");
  }
  return {values[0], values[1], values[2]};
}

void print_outcome(const pipeline::ClassifyOutcome& outcome, const std::string& outdir) {
  if (outcome.calibration) {
    const pipeline::CalibrationFit& fit = *outcome.calibration;
    char line[240];
    std::snprintf(line, sizeof line,
                  "calibration: T = %.4f on %lld regions (%lld without a truth row); NLL %.4f -> "
                  "%.4f, ECE %.4f -> %.4f\n",
                  fit.temperature, static_cast<long long>(fit.regions),
                  static_cast<long long>(outcome.unmatched_regions), fit.nll_before, fit.nll_after,
                  fit.ece_before, fit.ece_after);
    std::cout << line;
  }
  for (const auto& report : outcome.reports) {
    for (const auto& region : report["regions"]) {
      char line[240];
      std::snprintf(
          line, sizeof line, "  %-32s %-16s %.3f\n", region["id"].get<std::string>().c_str(),
          region["predicted"].get<std::string>().c_str(), region["probability"].get<double>());
      std::cout << line;
    }
  }
  std::cout << "temperature: " << outcome.temperature << "\npredictions: " << outdir
            << "/predictions.csv\n";
}

}  // namespace

void add_classify_command(CLI::App& app) {
  auto args = std::make_shared<ClassifyArguments>();
  pipeline::ClassifyOptions& options = args->options;
  CLI::App* command = app.add_subcommand(
      "classify", "Classify regions of CT/MR studies: probabilities per region, report.json, PNGs");
  command->add_option("inputs", args->inputs,
                      "DICOM series folders or NIfTI/NRRD/MHA files; several make a batch");
  command->add_option("--manifest", args->manifest,
                      "A CSV file id,path or id,path,roi with one case a row (a batch)");
  command->add_option("-o,--output", args->outdir, "Output folder (one subfolder per batch case)")
      ->required();
  command->add_option("--model", args->model,
                      "Classifier model folder (default: the bundled lesion classifier)");
  command->add_option("--roi", args->roi, "A mask on the input's grid: one region per lesion");
  command
      ->add_option("--label", args->label,
                   "With --roi: one region per connected component of this label")
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--margin", options.mask.margin_mm,
                   "With --roi: mm added around each bounding box")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--center", args->centre, "A region centred on X,Y,Z mm (LPS)");
  command->add_option("--size", args->size, "With --center: the region's size S or SX,SY,SZ mm");
  command->add_option("--threads", options.threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--calibrate", args->calibrate,
                      "A TRUTH.csv (id,label): fit the temperature and store it in the model");
  command->add_flag("--no-png", args->no_png, "Do not write the regions/ pictures");
  command->callback([args] {
    pipeline::ClassifyRequest request;
    for (const std::string& input : args->inputs) {
      request.inputs.emplace_back(input);
    }
    request.manifest = args->manifest;
    request.outdir = args->outdir;
    request.calibrate = args->calibrate;
    request.options = args->options;
    request.options.model_dir = args->model;
    request.options.roi = args->roi;
    request.options.png = !args->no_png;
    if (args->label >= 0) {
      request.options.mask.label = args->label;
    }
    if (!args->roi.empty() && !args->centre.empty()) {
      throw Error("cajal classify", "--roi or --center, not both", "both");
    }
    if (args->label >= 0 && args->roi.empty() && args->manifest.empty()) {
      throw Error("--label", "--roi MASK (or a manifest's roi column) to take it from", "no mask");
    }
    if (args->centre.empty() != args->size.empty()) {
      throw Error("--center / --size", "both together", "only one of them");
    }
    if (!args->centre.empty()) {
      request.options.centre = parse_vec3("--center", args->centre, false);
      request.options.size_mm = parse_vec3("--size", args->size, true);
    }
    const pipeline::ClassifyOutcome outcome = pipeline::run_classify(request);
    print_outcome(outcome, args->outdir);
    if (!outcome.batch) {
      return;
    }
    report_batch(outcome.summary, args->outdir, "cajal classify");
  });
}

}  // namespace cajal::apps
