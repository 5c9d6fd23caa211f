#include "pipeline/classify.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/train/random.h"

namespace cajal::pipeline {
namespace {

TEST(Classify, SoftmaxSumsToOneAndSharpensBelowUnitTemperature) {
  const std::vector<float> logits{1.0f, 3.0f, -2.0f};
  const std::vector<double> p1 = softmax(logits, 1.0);
  const std::vector<double> p_half = softmax(logits, 0.5);
  EXPECT_NEAR(std::accumulate(p1.begin(), p1.end(), 0.0), 1.0, 1e-12);
  EXPECT_NEAR(p1[1], std::exp(3.0) / (std::exp(1.0) + std::exp(3.0) + std::exp(-2.0)), 1e-12);
  EXPECT_GT(p_half[1], p1[1]);
}

// Logits z ~ N(0, 3) per class, labels drawn from softmax(z / 2.5): the fit recovers 2.5.
TEST(Classify, TemperatureFitRecoversKnownTemperatureWithinFivePercent) {
  engine::train::Generator random(42);
  const double true_t = 2.5;
  std::vector<std::vector<float>> logits;
  std::vector<int> labels;
  for (int s = 0; s < 4000; ++s) {
    std::vector<float> z(3);
    for (float& v : z) {
      v = static_cast<float>(random.normal(0.0, 3.0));
    }
    const std::vector<double> p = softmax(z, true_t);
    const double u = random.uniform(0.0, 1.0);
    int label = 0;
    for (double cumulative = p[0]; label < 2 && u > cumulative; cumulative += p[++label]) {
    }
    logits.push_back(z);
    labels.push_back(label);
  }
  const CalibrationFit fit = fit_temperature(logits, labels);
  EXPECT_NEAR(fit.temperature, true_t, 0.05 * true_t);
  EXPECT_LT(fit.nll_after, fit.nll_before);
  EXPECT_LT(fit.ece_after, fit.ece_before);
  EXPECT_EQ(fit.regions, 4000);
}

TEST(Classify, ExpectedCalibrationErrorOfOverconfidentPredictions) {
  // Two samples, both predicted class 0 with confidence ~1, one right: ECE ~ 0.5.
  const std::vector<std::vector<float>> logits{{20.0f, 0.0f}, {20.0f, 0.0f}};
  EXPECT_NEAR(expected_calibration_error(logits, {0, 1}, 1.0), 0.5, 1e-6);
  EXPECT_NEAR(expected_calibration_error(logits, {0, 0}, 1.0), 0.0, 1e-6);
}

TEST(Classify, PredictionsCsvHasOneRowPerRegionWithEveryColumn) {
  models::RunConfig run;
  run.labels = {"benign", "malignant"};
  ClassifiedCase c;
  c.id = "case_0000";
  Region region;
  region.id = "case_0000/lesion_1";
  region.source = RegionSource::roi;
  region.centre_mm = {1, 2, 3};
  region.volume_ml = 0.5;
  c.regions = {region};
  c.logits = {{-1.5f, 0.5f}};
  const std::string csv = predictions_csv({&c}, run, 1.0);
  EXPECT_EQ(
      csv,
      "id,case,predicted,probability,p_benign,p_malignant,logit_benign,logit_malignant,"
      "centre_x_mm,centre_y_mm,centre_z_mm,volume_ml\n"
      "case_0000/lesion_1,case_0000,malignant,0.880797078,0.119202922,0.880797078,-1.5,0.5,1,2,3,"
      "0.5\n");
}

}  // namespace
}  // namespace cajal::pipeline
