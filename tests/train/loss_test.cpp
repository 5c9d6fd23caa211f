#include "engine/train/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
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

// Cross-entropy and soft Dice in double, position by position, as their formulas read: the
// losses' reference where they run on OpenMP's threads.
struct NaiveLoss {
  double value = 0.0;
  std::vector<double> gradient;
};

NaiveLoss naive_loss(const Tensor& logits, const Tensor& labels, const std::vector<double>& w,
                     double ignore, double ce_weight, double dice_weight) {
  const std::int64_t n = logits.dim(0);
  const std::int64_t c = logits.dim(1);
  const std::int64_t s = logits.size() / (n * c);
  const auto at = [&](std::int64_t i, std::int64_t k, std::int64_t v) {
    return static_cast<std::size_t>((i * c + k) * s + v);
  };
  std::vector<double> p(static_cast<std::size_t>(logits.size()));
  double ce = 0.0;
  double weight_sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t v = 0; v < s; ++v) {
      double sum = 0.0;
      for (std::int64_t k = 0; k < c; ++k)
        sum += std::exp(double{logits.data()[at(i, k, v)]});
      for (std::int64_t k = 0; k < c; ++k)
        p[at(i, k, v)] = std::exp(double{logits.data()[at(i, k, v)]}) / sum;
      const double y = labels.data()[i * s + v];
      if (y != ignore) {
        const auto label = static_cast<std::int64_t>(y);
        ce -= w[static_cast<std::size_t>(label)] * std::log(p[at(i, label, v)]);
        weight_sum += w[static_cast<std::size_t>(label)];
      }
    }
  }
  // Soft Dice per sample and class, background included, smooth 1e-5.
  std::vector<double> inter(static_cast<std::size_t>(n * c)), pred(inter.size()),
      truth(inter.size());
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t v = 0; v < s; ++v) {
      const double y = labels.data()[i * s + v];
      for (std::int64_t k = 0; k < c && y != ignore; ++k) {
        const auto cell = static_cast<std::size_t>(i * c + k);
        pred[cell] += p[at(i, k, v)];
        inter[cell] += y == static_cast<double>(k) ? p[at(i, k, v)] : 0.0;
        truth[cell] += y == static_cast<double>(k) ? 1.0 : 0.0;
      }
    }
  }
  double dice = 0.0;
  for (std::size_t cell = 0; cell < inter.size(); ++cell)
    dice += (2.0 * inter[cell] + 1e-5) / (pred[cell] + truth[cell] + 1e-5);
  const auto cells = static_cast<double>(inter.size());
  NaiveLoss out{ce_weight * ce / weight_sum + dice_weight * (1.0 - dice / cells),
                std::vector<double>(p.size(), 0.0)};
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t v = 0; v < s; ++v) {
      const double y = labels.data()[i * s + v];
      if (y == ignore)
        continue;
      const auto label = static_cast<std::size_t>(y);
      // d dice_k / d p_k, then through the softmax: d p_k / d x_j = p_k (delta_kj - p_j).
      std::vector<double> d_dice(static_cast<std::size_t>(c));
      for (std::int64_t k = 0; k < c; ++k) {
        const auto cell = static_cast<std::size_t>(i * c + k);
        const double denom = pred[cell] + truth[cell] + 1e-5;
        const double yk = label == static_cast<std::size_t>(k) ? 1.0 : 0.0;
        d_dice[static_cast<std::size_t>(k)] =
            -(2.0 * yk * denom - (2.0 * inter[cell] + 1e-5)) / (denom * denom * cells);
      }
      for (std::int64_t j = 0; j < c; ++j) {
        const double pj = p[at(i, j, v)];
        double g = ce_weight * w[label] / weight_sum *
                   (pj - (label == static_cast<std::size_t>(j) ? 1.0 : 0.0));
        for (std::int64_t k = 0; k < c; ++k) {
          const double pk = p[at(i, k, v)];
          g += dice_weight * d_dice[static_cast<std::size_t>(k)] * pk * ((k == j ? 1.0 : 0.0) - pj);
        }
        out.gradient[at(i, j, v)] = g;
      }
    }
  }
  return out;
}

// Enough positions (2 x 9600, 18 blocks of 512 and a shorter one per sample) for the softmax and
// the gradients to run on the threads: the naive sums' values, and the same bytes on 1 and 2
// threads.
TEST(Loss, ManyPositionsOnThreadsMatchNaiveSumsAndOneThread) {
  const Dims dims{2, 3, 16, 24, 25};
  const auto logits = random_tensor(dims, 11, -4.0, 4.0);
  auto labels = random_labels({2, 16, 24, 25}, 3, 12);
  for (std::int64_t v = 0; v < labels.size(); v += 97)
    labels.data()[v] = 7.0f;
  const CrossEntropyConfig ce{{0.5f, 1.0f, 2.0f}, 7};
  const SoftDiceConfig dice{.batch_dice = false, .include_background = true, .ignore_index = 7};
  const std::vector<std::pair<LossConfig, std::pair<double, double>>> cases{
      {ce, {1.0, 0.0}},
      {dice, {0.0, 1.0}},
      {DiceCrossEntropyConfig{ce, dice, 0.7, 1.3}, {0.7, 1.3}}};
  for (const auto& [config, weights] : cases) {
    const auto naive =
        naive_loss(logits, labels, {0.5, 1.0, 2.0}, 7.0, weights.first, weights.second);
    const engine::Context two(2);
    const auto out = compute_loss(config, logits, labels);
    EXPECT_NEAR(out.value, naive.value, 1e-9 * std::abs(naive.value));
    double worst = 0.0;
    double scale = 0.0;
    for (std::size_t i = 0; i < naive.gradient.size(); ++i) {
      worst = std::max(worst, std::abs(out.diff_logits.data()[i] - naive.gradient[i]));
      scale = std::max(scale, std::abs(naive.gradient[i]));
    }
    EXPECT_LE(worst, 1e-6 * scale) << config.index();
    const engine::Context one(1);
    const auto alone = compute_loss(config, logits, labels);
    EXPECT_EQ(alone.value, out.value);
    EXPECT_TRUE(std::equal(alone.diff_logits.values().begin(), alone.diff_logits.values().end(),
                           out.diff_logits.values().begin()))
        << config.index();
  }
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

// Labels whose class weights are all 0 weigh nothing, as when every position is ignored: the
// cross-entropy is 0 with a gradient of +0 everywhere (no 0 / 0, no -0), and in Dice + CE the Dice
// term is Dice's alone (the softmax it reads is still computed), on one thread and on the threads.
TEST(Loss, ZeroWeightedLabelsGiveZeroCrossEntropy) {
  for (const Dims& dims : {Dims{2, 3, 4}, Dims{2, 3, 16, 24, 24}}) {
    const auto logits = random_tensor(dims, 4, -1.0, 1.0);
    Dims label_dims = dims;
    label_dims.erase(label_dims.begin() + 1);
    const Tensor labels(label_dims, 0.0f);
    const CrossEntropyConfig ce{{0.0f, 1.0f, 2.0f}, -100};
    const auto out = cross_entropy(logits, labels, ce);
    EXPECT_EQ(out.value, 0.0);
    for (const float g : out.diff_logits.values())
      ASSERT_TRUE(g == 0.0f && !std::signbit(g)) << g << " " << to_string(dims);
    const SoftDiceConfig dice{};
    const auto both =
        dice_cross_entropy(logits, labels, DiceCrossEntropyConfig{ce, dice, 1.0, 1.0});
    const auto alone = soft_dice(logits, labels, dice);
    EXPECT_EQ(both.value, alone.value) << to_string(dims);
    EXPECT_EQ(std::memcmp(both.diff_logits.data(), alone.diff_logits.data(),
                          static_cast<std::size_t>(alone.diff_logits.size()) * sizeof(float)),
              0)
        << to_string(dims);
    // Dice weighted 0 too: every gradient +0, as the cross-entropy's own.
    const auto no_dice =
        dice_cross_entropy(logits, labels, DiceCrossEntropyConfig{ce, dice, 1.0, 0.0});
    for (const float g : no_dice.diff_logits.values())
      ASSERT_TRUE(g == 0.0f && !std::signbit(g)) << g << " " << to_string(dims);
  }
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

// On the threads (2 x 9216 positions) too, the error names the first label that does not fit.
TEST(Loss, NamesTheFirstLabelThatDoesNotFitOnThreads) {
  const auto logits = random_tensor({2, 3, 96, 96}, 4, -1.0, 1.0);
  Tensor labels({2, 96, 96});
  labels.data()[15000] = 3.0f;
  labels.data()[40] = 7.5f;
  const engine::Context two(2);
  try {
    cross_entropy(logits, labels, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cross-entropy target value at position 40: expected an integer in [0, 3) or the "
              "ignore index -100, got 7.500000");
  }
}

}  // namespace
}  // namespace cajal::engine::train
