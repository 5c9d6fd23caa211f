#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "apps/commands.h"
#include "core/error.h"
#include "pipeline/batch.h"
#include "pipeline/evaluate_classifier.h"

namespace cajal::apps {
namespace {

namespace fs = std::filesystem;

struct EvaluateClassifierOptions {
  std::string predictions;
  std::string truth;
  std::string output;  // empty or "-": stdout
  std::string plots;   // empty: none
};

void run_evaluate_classifier(const EvaluateClassifierOptions& options) {
  for (const std::string& input : {options.predictions, options.truth}) {
    std::error_code error;
    if (!options.output.empty() && options.output != "-" &&
        fs::equivalent(options.output, input, error)) {
      throw Error("--output FILE", "a file other than the inputs", "'" + options.output + "'");
    }
  }
  const pipeline::ClassifierMetrics metrics = pipeline::compute_classifier_metrics(
      pipeline::read_classifier_files(options.predictions, options.truth));
  if (!options.plots.empty()) {
    pipeline::write_classifier_plots(metrics, options.plots);
  }
  const std::string json = pipeline::to_json(metrics).dump(2) + "\n";
  if (options.output.empty() || options.output == "-") {
    std::cout << json;
  } else {
    pipeline::write_text_atomically(options.output, json);
  }
}

}  // namespace

void add_evaluate_classifier_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateClassifierOptions>();
  CLI::App* command = app.add_subcommand(
      "evaluate-classifier",
      "Score a classifier's predictions against the true classes: accuracy, balanced accuracy, "
      "sensitivity and specificity per class, confusion matrix, one-vs-rest ROC AUC and "
      "expected calibration error (formats and definitions: docs/evaluate-classifier.md)");
  command
      ->add_option("predictions", options->predictions,
                   "CSV with columns id, predicted and p_<class> for each class")
      ->required();
  command->add_option("truth", options->truth, "CSV with columns id and label")->required();
  command
      ->add_option("--output", options->output,
                   "Write the JSON to FILE (written under a temporary name and renamed); "
                   "default: stdout")
      ->type_name("FILE");
  command->add_option("--plots", options->plots, "Write roc.png and reliability.png into DIR")
      ->type_name("DIR");
  command->callback([options] { run_evaluate_classifier(*options); });
}

}  // namespace cajal::apps
