#include "pipeline/classifier_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

std::optional<double> ratio(std::int64_t numerator, std::int64_t denominator) {
  if (denominator == 0) {
    return std::nullopt;
  }
  return static_cast<double>(numerator) / static_cast<double>(denominator);
}

void check_data(const ClassifierData& data) {
  const std::size_t n = data.truth.size();
  const int classes = static_cast<int>(data.classes.size());
  if (n == 0) {
    throw Error("classifier cases", "at least one", "none");
  }
  if (classes < 2) {
    throw Error("classifier classes", "at least two", std::to_string(classes));
  }
  if (data.predicted.size() != n || data.probabilities.size() != n) {
    throw Error("classifier data", std::to_string(n) + " predictions and probability rows",
                std::to_string(data.predicted.size()) + " and " +
                    std::to_string(data.probabilities.size()));
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (const int k : {data.truth[i], data.predicted[i]}) {
      if (k < 0 || k >= classes) {
        throw Error("class index of case " + std::to_string(i), "0.." + std::to_string(classes - 1),
                    std::to_string(k));
      }
    }
    if (data.probabilities[i].size() != data.classes.size()) {
      throw Error("probabilities of case " + std::to_string(i), std::to_string(classes),
                  std::to_string(data.probabilities[i].size()));
    }
  }
}

std::vector<ReliabilityBin> reliability_bins(const ClassifierData& data, int bins, double& ece) {
  if (bins < 1) {
    throw Error("calibration bins", "at least 1", std::to_string(bins));
  }
  std::vector<ReliabilityBin> result(static_cast<std::size_t>(bins));
  std::vector<double> confidence_sum(result.size(), 0.0);
  std::vector<std::int64_t> correct(result.size(), 0);
  for (int m = 0; m < bins; ++m) {
    result[m].lower = static_cast<double>(m) / bins;
    result[m].upper = static_cast<double>(m + 1) / bins;
  }
  for (std::size_t i = 0; i < data.truth.size(); ++i) {
    const std::vector<double>& p = data.probabilities[i];
    const auto top = std::max_element(p.begin(), p.end());  // first of equal maxima
    const double confidence = *top;
    // (lower, upper], the first bin closed at 0: the first bin whose upper edge reaches it.
    int m = 0;
    while (m + 1 < bins && confidence > result[m].upper) {
      ++m;
    }
    ++result[m].count;
    confidence_sum[m] += confidence;
    correct[m] += (top - p.begin()) == data.truth[i] ? 1 : 0;
  }
  ece = 0;
  const double n = static_cast<double>(data.truth.size());
  for (std::size_t m = 0; m < result.size(); ++m) {
    if (result[m].count == 0) {
      continue;
    }
    const double count = static_cast<double>(result[m].count);
    result[m].mean_confidence = confidence_sum[m] / count;
    result[m].accuracy = static_cast<double>(correct[m]) / count;
    ece += count / n * std::abs(*result[m].accuracy - *result[m].mean_confidence);
  }
  return result;
}

}  // namespace

double expected_calibration_error(const std::vector<std::vector<double>>& probabilities,
                                  const std::vector<int>& truth, int bins) {
  ClassifierData data;
  data.truth = truth;
  data.probabilities = probabilities;
  double ece = 0;
  reliability_bins(data, bins, ece);
  return ece;
}

RocCurve compute_roc_curve(const std::vector<bool>& positive, const std::vector<double>& score) {
  if (positive.size() != score.size()) {
    throw Error("ROC curve inputs", "as many scores as labels",
                std::to_string(score.size()) + " scores for " + std::to_string(positive.size()));
  }
  // scikit-learn's _binary_clf_curve: scores in decreasing order (stable), one point at the last
  // case of each run of equal scores.
  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  std::vector<double> tps;
  std::vector<double> fps;
  std::vector<double> thresholds;
  double tp = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    tp += positive[order[i]] ? 1 : 0;
    if (i + 1 == order.size() || score[order[i + 1]] != score[order[i]]) {
      tps.push_back(tp);
      fps.push_back(static_cast<double>(i + 1) - tp);
      thresholds.push_back(score[order[i]]);
    }
  }
  // drop_intermediate: keep the ends and the points where the curve bends.
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < tps.size(); ++i) {
    const bool end = i == 0 || i + 1 == tps.size();
    if (tps.size() <= 2 || end || fps[i - 1] - 2 * fps[i] + fps[i + 1] != 0 ||
        tps[i - 1] - 2 * tps[i] + tps[i + 1] != 0) {
      keep.push_back(i);
    }
  }
  RocCurve curve;
  curve.fpr.push_back(0);
  curve.tpr.push_back(0);
  curve.thresholds.push_back(std::numeric_limits<double>::infinity());
  const double total_fp = fps.empty() ? 0 : fps.back();
  const double total_tp = tps.empty() ? 0 : tps.back();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::size_t i : keep) {
    curve.fpr.push_back(total_fp > 0 ? fps[i] / total_fp : nan);
    curve.tpr.push_back(total_tp > 0 ? tps[i] / total_tp : nan);
    curve.thresholds.push_back(thresholds[i]);
  }
  if (total_fp == 0) {
    curve.fpr[0] = nan;
  }
  if (total_tp == 0) {
    curve.tpr[0] = nan;
  }
  return curve;
}

std::optional<double> roc_auc(const RocCurve& curve) {
  if (curve.fpr.size() < 2 || std::isnan(curve.fpr.back()) || std::isnan(curve.tpr.back())) {
    return std::nullopt;
  }
  double area = 0;
  for (std::size_t i = 1; i < curve.fpr.size(); ++i) {
    area += (curve.fpr[i] - curve.fpr[i - 1]) * (curve.tpr[i] + curve.tpr[i - 1]) / 2;
  }
  return area;
}

ClassifierMetrics compute_classifier_metrics(const ClassifierData& data, int calibration_bins) {
  check_data(data);
  const std::size_t n = data.truth.size();
  const std::size_t classes = data.classes.size();
  ClassifierMetrics metrics;
  metrics.count = static_cast<std::int64_t>(n);
  metrics.confusion.assign(classes, std::vector<std::int64_t>(classes, 0));
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ++metrics.confusion[data.truth[i]][data.predicted[i]];
    correct += data.truth[i] == data.predicted[i] ? 1 : 0;
  }
  metrics.accuracy = static_cast<double>(correct) / static_cast<double>(n);

  double recall_sum = 0;
  int recall_count = 0;
  double auc_sum = 0;
  int auc_count = 0;
  for (std::size_t k = 0; k < classes; ++k) {
    ClassMetrics m;
    m.name = data.classes[k];
    std::int64_t tp = metrics.confusion[k][k];
    for (std::size_t j = 0; j < classes; ++j) {
      m.support += metrics.confusion[k][j];
      m.predicted_count += metrics.confusion[j][k];
    }
    const std::int64_t fp = m.predicted_count - tp;
    const std::int64_t negatives = metrics.count - m.support;
    m.sensitivity = ratio(tp, m.support);
    m.specificity = ratio(negatives - fp, negatives);
    std::vector<bool> positive(n);
    std::vector<double> score(n);
    for (std::size_t i = 0; i < n; ++i) {
      positive[i] = data.truth[i] == static_cast<int>(k);
      score[i] = data.probabilities[i][k];
    }
    m.roc = compute_roc_curve(positive, score);
    m.auc = roc_auc(m.roc);
    if (m.sensitivity) {
      recall_sum += *m.sensitivity;
      ++recall_count;
    }
    if (m.auc) {
      auc_sum += *m.auc;
      ++auc_count;
    }
    metrics.classes.push_back(std::move(m));
  }
  metrics.balanced_accuracy = recall_sum / recall_count;  // n > 0: some class has support
  if (auc_count > 0) {
    metrics.macro_auc = auc_sum / auc_count;
  }
  metrics.reliability =
      reliability_bins(data, calibration_bins, metrics.expected_calibration_error);
  return metrics;
}

}  // namespace cajal::pipeline
