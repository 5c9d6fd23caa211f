// `cajal evaluate-classifier PREDICTIONS.csv TRUTH.csv`: reads a classifier's predictions and the
// true classes (formats in docs/evaluate-classifier.md), matches the rows by id, and reports the
// metrics of pipeline/classifier_metrics.h as JSON and PNG plots.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/classifier_metrics.h"
#include "pipeline/csv.h"

namespace cajal::pipeline {

// Predictions: header `id,predicted,p_<class>...` (columns in any order, extra columns
// ignored); truth: `id,label`. Throws Error (file, line, what, expected, got) on a missing
// column, a duplicate or missing id, an unknown class, a probability outside [0, 1] or not a
// number, or probabilities of a row that do not sum to 1 within 1e-3.
ClassifierData read_classifier_data(const std::string& predictions_csv,
                                    const std::string& predictions_source,
                                    const std::string& truth_csv, const std::string& truth_source);
ClassifierData read_classifier_files(const std::filesystem::path& predictions,
                                     const std::filesystem::path& truth);

// The schema is in docs/evaluate-classifier.md; values that do not exist are null.
nlohmann::ordered_json to_json(const ClassifierMetrics& metrics);

// DIR/roc.png (one curve per class) and DIR/reliability.png; creates DIR.
void write_classifier_plots(const ClassifierMetrics& metrics, const std::filesystem::path& dir);

}  // namespace cajal::pipeline
