#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/evaluate.h"

namespace cajal::apps {
namespace {

namespace fs = std::filesystem;

struct EvaluateOptions {
  std::string pred;
  std::string ref;
  std::vector<std::string> labels;
  double tolerance_mm = 2.0;
  std::string json;  // "-" for stdout, empty for none
  std::string csv;   // likewise
};

// Refuses an output path that names one of the inputs: `--json PRED REF` would otherwise
// overwrite it.
void check_output_path(const std::string& output, const std::string& option,
                       const EvaluateOptions& options) {
  if (output.empty() || output == "-") {
    return;
  }
  for (const std::string& input : {options.pred, options.ref}) {
    std::error_code error;
    if (fs::equivalent(output, input, error)) {
      throw Error(option + " FILE", "a file other than the inputs", "'" + output + "'");
    }
  }
}

// Writes `text` under a temporary name beside `path` and renames it into place.
void write_text(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw Error("writing " + path.string(), "a writable file",
                  "an error writing " + temporary.string());
    }
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    fs::remove(temporary, error);
    throw Error("writing " + path.string(), "a writable file", "rename failed");
  }
}

void run_evaluate(const EvaluateOptions& options) {
  if (options.json == "-" && options.csv == "-") {
    throw Error("--json and --csv", "at most one of them on stdout", "both");
  }
  if (!(options.tolerance_mm >= 0) || !std::isfinite(options.tolerance_mm)) {
    throw Error("--tolerance", "a distance >= 0 mm", std::to_string(options.tolerance_mm));
  }
  check_output_path(options.json, "--json", options);
  check_output_path(options.csv, "--csv", options);
  pipeline::EvaluationOptions evaluation_options;
  evaluation_options.tolerance_mm = options.tolerance_mm;
  for (const std::string& text : options.labels) {
    evaluation_options.labels.push_back(pipeline::parse_label_spec(text));
  }
  const pipeline::EvaluationReport report =
      pipeline::evaluate_files(options.pred, options.ref, evaluation_options);

  const pipeline::Evaluation& e = report.evaluation;
  for (const pipeline::LabelMetrics& m : e.labels) {
    if (m.presence == pipeline::LabelPresence::neither) {
      core::log_warning("label " + std::to_string(m.label.value) +
                        " is in neither image (scored Dice 1, distances null)");
    }
  }
  for (std::int64_t label : e.only_in_pred) {
    core::log_warning("label " + std::to_string(label) + " is only in the prediction");
  }
  for (std::int64_t label : e.only_in_ref) {
    core::log_warning("label " + std::to_string(label) + " is only in the reference");
  }

  if (!options.json.empty()) {
    const std::string json = pipeline::to_json(report).dump(2) + "\n";
    if (options.json == "-") {
      std::cout << json;
    } else {
      write_text(options.json, json);
    }
  }
  if (!options.csv.empty()) {
    const std::string csv = pipeline::to_csv(report);
    if (options.csv == "-") {
      std::cout << csv;
    } else {
      write_text(options.csv, csv);
    }
  }
  if (options.json != "-" && options.csv != "-") {
    std::cout << pipeline::to_text(report);
  }
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateOptions>();
  CLI::App* command = app.add_subcommand(
      "evaluate",
      "Compare a predicted label map with a reference, label by label: Dice, HD95, ASSD, "
      "Hausdorff, normalised surface Dice and volume difference (definitions: docs/metrics.md)");
  command->add_option("pred", options->pred, "Predicted label map (NIfTI/NRRD/MHA or DICOM)")
      ->required();
  command->add_option("ref", options->ref, "Reference label map on the same grid")->required();
  command
      ->add_option("--labels", options->labels,
                   "Labels to score: numbers or N=Name pairs, e.g. 1=Liver,2=Spleen "
                   "(default: every non-zero label in either image)")
      ->delimiter(',')
      ->type_name("N[=NAME],...");
  command
      ->add_option("--tolerance", options->tolerance_mm,
                   "Tolerance in mm for the normalised surface Dice (default 2 mm)")
      ->type_name("MM");
  command
      ->add_option("--json", options->json,
                   "Write JSON to FILE; without FILE (or with -) print JSON instead of the table")
      ->expected(0, 1)
      ->default_str("-")
      ->option_text("[FILE]");
  command
      ->add_option("--csv", options->csv, "Write CSV to FILE (- prints CSV instead of the table)")
      ->type_name("FILE");
  command->callback([options] { run_evaluate(*options); });
}

}  // namespace cajal::apps
