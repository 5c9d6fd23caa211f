// `cajal evaluate`: reads a predicted and a reference label map, compares them label by label
// (pipeline/metrics.h), and formats the result as JSON, CSV or a table.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "pipeline/metrics.h"

namespace cajal::pipeline {

struct EvaluationReport {
  std::string pred_path;
  std::string ref_path;
  Evaluation evaluation;
};

// Reads both files and evaluates them; throws Error on unreadable files and on anything
// evaluate_segmentation refuses.
EvaluationReport evaluate_files(const std::filesystem::path& pred_path,
                                const std::filesystem::path& ref_path,
                                const EvaluationOptions& options);

// The schema is in docs/metrics.md. Values that do not exist (distances when a mask is empty)
// are null in JSON and empty in CSV.
nlohmann::ordered_json to_json(const EvaluationReport& report);
std::string to_csv(const EvaluationReport& report);
std::string to_text(const EvaluationReport& report);

}  // namespace cajal::pipeline
