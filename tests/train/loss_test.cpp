#include "engine/train/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/train/config.h"
#include "engine/train/random.h"
#include "tests/train/fixture.h"

namespace cajal::engine::train {
namespace {

using testing::read_fixture;
using testing::relative_error;
using testing::tensor_from_json;

class TorchLoss : public ::testing::TestWithParam<std::string> {};

nlohmann::json loss_case(const std::string& name) {
  for (const auto& c : read_fixture("losses")) {
    if (c.at("name") == name)
      return c;
  }
  throw Error("loss fixture", name, "none");
}

// tools/export_torch_train_fixtures.py recorded PyTorch's value and gradient (float64 autograd).
TEST_P(TorchLoss, MatchesPyTorchValueAndGradient) {
  const auto c = loss_case(GetParam());
  auto json = c.at("config");
  json["type"] = c.at("kind");
  const auto config = loss_config_from_json(json);
  const auto out =
      compute_loss(config, tensor_from_json(c.at("logits")), tensor_from_json(c.at("target")));
  const double expected = c.at("value");
  EXPECT_LE(std::abs(out.value - expected), 1e-5 * std::abs(expected)) << out.value;
  EXPECT_LE(relative_error(out.diff_logits, tensor_from_json(c.at("diff_logits"))), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchLoss,
                         ::testing::Values("ce_2d", "ce_2d_weights_ignore", "ce_3d_weights_ignore",
                                           "ce_classification", "ce_large_logits", "bce_2d",
                                           "bce_2d_weights", "bce_3d_large", "dice_2d_batch_no_bg",
                                           "dice_3d_per_sample_bg_ignore", "dice_ce_2d", "mse_2d"),
                         [](const auto& param_info) { return param_info.param; });

Tensor random_tensor(const Dims& dims, std::uint64_t seed, double lo, double hi) {
  Tensor t(dims);
  Generator g(seed);
  for (auto& v : t.values())
    v = static_cast<float>(g.uniform(lo, hi));
  return t;
}

Tensor random_labels(const Dims& dims, std::int64_t classes, std::uint64_t seed) {
  Tensor t(dims);
  Generator g(seed);
  for (auto& v : t.values())
    v = static_cast<float>(g.below(static_cast<std::uint64_t>(classes)));
  return t;
}

// Central differences on every logit, in double from the float logits.
double max_finite_difference_error(const LossConfig& config, Tensor logits, const Tensor& target) {
  const auto analytic = compute_loss(config, logits, target).diff_logits;
  double worst = 0.0;
  double scale = 1e-12;
  for (std::int64_t i = 0; i < logits.size(); ++i) {
    const float x = logits.data()[i];
    const float h = 1e-2f;
    logits.data()[i] = x + h;
    const double up = compute_loss(config, logits, target).value;
    logits.data()[i] = x - h;
    const double down = compute_loss(config, logits, target).value;
    logits.data()[i] = x;
    const double numeric = (up - down) / (2.0 * double{h});
    worst = std::max(worst, std::abs(numeric - analytic.data()[i]));
    scale = std::max(scale, std::abs(double{analytic.data()[i]}));
  }
  return worst / scale;
}

TEST(Loss, GradientsMatchFiniteDifferences) {
  const Dims dims{2, 3, 3, 4};
  const auto logits = random_tensor(dims, 1, -2.0, 2.0);
  auto labels = random_labels({2, 3, 4}, 3, 2);
  labels.data()[5] = 9.0f;
  const auto probabilities = random_tensor(dims, 3, 0.0, 1.0);
  const CrossEntropyConfig ce{{0.5f, 1.0f, 2.0f}, 9};
  const SoftDiceConfig dice{.smooth = 1e-3, .batch_dice = false, .ignore_index = 9};
  EXPECT_LE(max_finite_difference_error(ce, logits, labels), 1e-3);
  EXPECT_LE(max_finite_difference_error(dice, logits, labels), 1e-3);
  EXPECT_LE(max_finite_difference_error(DiceCrossEntropyConfig{ce, dice, 0.7, 1.3}, logits, labels),
            1e-3);
  EXPECT_LE(max_finite_difference_error(BinaryCrossEntropyConfig{{1.0f, 0.5f, 2.0f}}, logits,
                                        probabilities),
            1e-3);
  EXPECT_LE(max_finite_difference_error(MeanSquaredErrorConfig{}, logits, probabilities), 1e-3);
}

TEST(Loss, AcceptsTargetsWithOrWithoutChannelAxis) {
  const auto logits = random_tensor({2, 3, 4}, 4, -1.0, 1.0);
  const auto labels = random_labels({2, 4}, 3, 5);
  const Tensor with_axis({2, 1, 4},
                         std::vector<float>(labels.values().begin(), labels.values().end()));
  EXPECT_EQ(cross_entropy(logits, labels, {}).value, cross_entropy(logits, with_axis, {}).value);
}

TEST(Loss, AllIgnoredGivesZeroLossAndGradient) {
  const auto logits = random_tensor({2, 3, 4}, 4, -1.0, 1.0);
  const Tensor labels({2, 4}, -100.0f);
  const auto out = cross_entropy(logits, labels, {});
  EXPECT_EQ(out.value, 0.0);
  for (const float g : out.diff_logits.values())
    EXPECT_EQ(g, 0.0f);
}

TEST(Loss, RejectsTargetsThatDoNotFit) {
  const auto logits = random_tensor({2, 3, 4}, 4, -1.0, 1.0);
  EXPECT_THROW(cross_entropy(logits, Tensor({2, 5}), {}), Error);
  Tensor labels({2, 4});
  labels.data()[3] = 3.0f;  // class 3 of 3
  EXPECT_THROW(cross_entropy(logits, labels, {}), Error);
  labels.data()[3] = 0.5f;
  EXPECT_THROW(soft_dice(logits, labels, {}), Error);
  labels.data()[3] = 0.0f;
  EXPECT_THROW(cross_entropy(logits, labels, {{1.0f, 2.0f}, -100}), Error);
  EXPECT_THROW(binary_cross_entropy(logits, Tensor({2, 3, 5}), {}), Error);
  EXPECT_THROW(mean_squared_error(logits, Tensor({2, 4})), Error);
  EXPECT_THROW(soft_dice(Tensor({2, 1, 4}), Tensor({2, 4}), {}), Error);
  try {
    cross_entropy(logits, Tensor({2, 5}), {});
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cross-entropy target: expected [2,4] or [2,1,4], got [2,5]");
  }
}

}  // namespace
}  // namespace cajal::engine::train
