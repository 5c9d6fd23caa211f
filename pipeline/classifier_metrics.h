// Metrics of a classifier over a set of cases with known classes: accuracy, balanced accuracy,
// per-class sensitivity and specificity, the confusion matrix, one-vs-rest ROC curves and AUC,
// and calibration (expected calibration error and the reliability diagram). The definitions
// follow scikit-learn's (docs/evaluate-classifier.md gives each one).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cajal::pipeline {

// One row per case; classes are indices into `classes`.
struct ClassifierData {
  std::vector<std::string> classes;
  std::vector<int> truth;
  std::vector<int> predicted;
  std::vector<std::vector<double>> probabilities;  // [case][class]
};

// scikit-learn's roc_curve with drop_intermediate=True: the points where the threshold passes a
// distinct score, collinear ones dropped, starting at (0, 0). thresholds[0] is +infinity (no
// case is called positive); thresholds[i] for i > 0 are scores, decreasing.
struct RocCurve {
  std::vector<double> fpr;
  std::vector<double> tpr;
  std::vector<double> thresholds;
};

// Throws Error when `positive` and `score` differ in length. The curve's rates are NaN when
// there are no positives (tpr) or no negatives (fpr).
RocCurve compute_roc_curve(const std::vector<bool>& positive, const std::vector<double>& score);
// The trapezoid area under the curve; empty when the curve has no positives or no negatives.
std::optional<double> roc_auc(const RocCurve& curve);

struct ClassMetrics {
  std::string name;
  std::int64_t support = 0;           // cases of this class in the truth
  std::int64_t predicted_count = 0;   // cases predicted as this class
  std::optional<double> sensitivity;  // TP / (TP + FN); empty without support
  std::optional<double> specificity;  // TN / (TN + FP); empty when every case is this class
  std::optional<double> auc;          // one-vs-rest, on this class's probability
  RocCurve roc;
};

// Confidence bin (lower, upper] of the reliability diagram (the first bin includes 0).
struct ReliabilityBin {
  double lower = 0;
  double upper = 0;
  std::int64_t count = 0;
  std::optional<double> mean_confidence;  // empty when the bin is empty
  std::optional<double> accuracy;
};

struct ClassifierMetrics {
  std::int64_t count = 0;
  double accuracy = 0;
  // Mean sensitivity over the classes present in the truth (scikit-learn's
  // balanced_accuracy_score).
  double balanced_accuracy = 0;
  // Mean one-vs-rest AUC over the classes that have both positives and negatives; empty when
  // none has.
  std::optional<double> macro_auc;
  // sum over bins of (count / N) * |accuracy - mean confidence|, on the top-class probability
  // and whether the top class (first one on ties) is the true class.
  double expected_calibration_error = 0;
  std::vector<std::vector<std::int64_t>> confusion;  // [truth][predicted]
  std::vector<ClassMetrics> classes;
  std::vector<ReliabilityBin> reliability;
};

inline constexpr int default_calibration_bins = 15;

// ClassifierMetrics::expected_calibration_error alone, from probabilities [case][class] and true
// class indices, over `bins` equal-width bins. Throws Error when bins < 1.
double expected_calibration_error(const std::vector<std::vector<double>>& probabilities,
                                  const std::vector<int>& truth, int bins);

// Throws Error when the data is empty or inconsistent (lengths, class indices out of range).
ClassifierMetrics compute_classifier_metrics(const ClassifierData& data,
                                             int calibration_bins = default_calibration_bins);

}  // namespace cajal::pipeline
