#include "pipeline/classifier_metrics.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

// truth a a b b c c, predicted a b b b c a.
ClassifierData three_class_data() {
  ClassifierData data;
  data.classes = {"a", "b", "c"};
  data.truth = {0, 0, 1, 1, 2, 2};
  data.predicted = {0, 1, 1, 1, 2, 0};
  data.probabilities = {{0.8, 0.1, 0.1}, {0.3, 0.6, 0.1}, {0.1, 0.8, 0.1},
                        {0.2, 0.7, 0.1}, {0.1, 0.1, 0.8}, {0.5, 0.2, 0.3}};
  return data;
}

TEST(ClassifierMetrics, CountsTheConfusionMatrixByTruthThenPrediction) {
  const ClassifierMetrics m = compute_classifier_metrics(three_class_data());
  const std::vector<std::vector<std::int64_t>> expected = {{1, 1, 0}, {0, 2, 0}, {1, 0, 1}};
  EXPECT_EQ(m.confusion, expected);
  EXPECT_EQ(m.count, 6);
}

TEST(ClassifierMetrics, ComputesAccuracyBalancedAccuracySensitivityAndSpecificity) {
  const ClassifierMetrics m = compute_classifier_metrics(three_class_data());
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, (0.5 + 1.0 + 0.5) / 3.0);
  ASSERT_EQ(m.classes.size(), 3u);
  EXPECT_DOUBLE_EQ(*m.classes[0].sensitivity, 0.5);
  EXPECT_DOUBLE_EQ(*m.classes[1].sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(*m.classes[2].sensitivity, 0.5);
  EXPECT_DOUBLE_EQ(*m.classes[0].specificity, 0.75);
  EXPECT_DOUBLE_EQ(*m.classes[1].specificity, 0.75);
  EXPECT_DOUBLE_EQ(*m.classes[2].specificity, 1.0);
  EXPECT_EQ(m.classes[0].support, 2);
  EXPECT_EQ(m.classes[0].predicted_count, 2);
}

TEST(ClassifierMetrics, LeavesSensitivityEmptyAndOutOfBalancedAccuracyForAClassWithoutCases) {
  ClassifierData data = three_class_data();
  data.truth = {0, 0, 1, 1, 1, 1};  // no c
  const ClassifierMetrics m = compute_classifier_metrics(data);
  EXPECT_FALSE(m.classes[2].sensitivity.has_value());
  EXPECT_FALSE(m.classes[2].auc.has_value());
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, (0.5 + 2.0 / 4.0) / 2.0);
}

TEST(RocCurve, CountsTiedScoresAsHalfAndStartsAtInfinity) {
  // Positives score 0.9 and 0.8, negatives 0.8 and 0.1: AUC = (1 + 1 + 0.5 + 1) / 4.
  const RocCurve curve = compute_roc_curve({true, false, true, false}, {0.9, 0.8, 0.8, 0.1});
  EXPECT_EQ(curve.fpr, (std::vector<double>{0, 0, 0.5, 1}));
  EXPECT_EQ(curve.tpr, (std::vector<double>{0, 0.5, 1, 1}));
  EXPECT_EQ(curve.thresholds,
            (std::vector<double>{std::numeric_limits<double>::infinity(), 0.9, 0.8, 0.1}));
  EXPECT_DOUBLE_EQ(*roc_auc(curve), 0.875);
}

TEST(RocCurve, DropsCollinearPointsAsScikitLearnDoes) {
  const RocCurve curve = compute_roc_curve({true, true, true, false}, {0.9, 0.8, 0.7, 0.6});
  EXPECT_EQ(curve.fpr, (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(curve.tpr, (std::vector<double>{0, 1.0 / 3.0, 1, 1}));
  EXPECT_EQ(curve.thresholds[2], 0.7);
  EXPECT_DOUBLE_EQ(*roc_auc(curve), 1.0);
}

TEST(RocCurve, HasNoAreaWithoutNegatives) {
  const RocCurve curve = compute_roc_curve({true, true}, {0.9, 0.1});
  EXPECT_FALSE(roc_auc(curve).has_value());
  EXPECT_THROW(compute_roc_curve({true}, {0.9, 0.1}), Error);
}

TEST(ClassifierMetrics, AveragesOneVsRestAucOverClasses) {
  const ClassifierMetrics m = compute_classifier_metrics(three_class_data());
  // a: positives 0.8, 0.3 against 0.1 0.2 0.1 0.5 -> (4 + 3) / 8.
  EXPECT_DOUBLE_EQ(*m.classes[0].auc, 7.0 / 8.0);
  // b: positives 0.8 0.7 against 0.1 0.6 0.1 0.2 -> 8 / 8; c: 0.8 0.3 against 0.1 x4 -> 1.
  EXPECT_DOUBLE_EQ(*m.classes[1].auc, 1.0);
  EXPECT_DOUBLE_EQ(*m.classes[2].auc, 1.0);
  EXPECT_DOUBLE_EQ(*m.macro_auc, (0.875 + 1 + 1) / 3.0);
}

TEST(ClassifierMetrics, WeighsCalibrationGapsByBinCount) {
  ClassifierData data;
  data.classes = {"x", "y"};
  data.truth = {0, 1};
  data.predicted = {0, 0};
  data.probabilities = {{0.9, 0.1}, {0.6, 0.4}};
  const ClassifierMetrics m = compute_classifier_metrics(data, 3);
  // 0.9 in (2/3, 1], right; 0.6 in (1/3, 2/3], wrong.
  EXPECT_DOUBLE_EQ(m.expected_calibration_error, 0.5 * 0.1 + 0.5 * 0.6);
  ASSERT_EQ(m.reliability.size(), 3u);
  EXPECT_EQ(m.reliability[0].count, 0);
  EXPECT_FALSE(m.reliability[0].accuracy.has_value());
  EXPECT_EQ(m.reliability[1].count, 1);
  EXPECT_DOUBLE_EQ(*m.reliability[1].accuracy, 0.0);
  EXPECT_DOUBLE_EQ(*m.reliability[2].mean_confidence, 0.9);
}

TEST(ClassifierMetrics, PutsAConfidenceOnABinEdgeInTheLowerBinAndTiesOnTheFirstClass) {
  ClassifierData data;
  data.classes = {"x", "y", "z"};
  data.truth = {0};
  data.predicted = {1};
  data.probabilities = {{1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0}};
  const ClassifierMetrics m = compute_classifier_metrics(data, 3);
  EXPECT_EQ(m.reliability[0].count, 1);
  EXPECT_DOUBLE_EQ(*m.reliability[0].accuracy, 1.0);  // top class x, the true one
  EXPECT_NEAR(m.expected_calibration_error, 2.0 / 3.0, 1e-15);
}

TEST(ClassifierMetrics, RefusesInconsistentData) {
  ClassifierData data = three_class_data();
  data.predicted.pop_back();
  EXPECT_THROW(compute_classifier_metrics(data), Error);
  data = three_class_data();
  data.truth[0] = 3;
  EXPECT_THROW(compute_classifier_metrics(data), Error);
  data = three_class_data();
  data.probabilities[1].pop_back();
  EXPECT_THROW(compute_classifier_metrics(data), Error);
}

}  // namespace
}  // namespace cajal::pipeline
