#include "engine/train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "engine/train/config.h"
#include "tests/train/fixture.h"

namespace cajal::engine::train {
namespace {

// torch.optim.lr_scheduler (StepLR, PolynomialLR, CosineAnnealingLR, LinearLR + SequentialLR)
// over 20 steps; PyTorch's recursive forms agree with the closed forms up to double rounding.
TEST(Schedule, MatchesPyTorchOverTwentySteps) {
  for (const auto& c : testing::read_fixture("schedules")) {
    const auto config = schedule_config_from_json(c.at("config"));
    const auto& rates = c.at("rates");
    for (std::size_t t = 0; t < rates.size(); ++t) {
      const double expected = rates.at(t);
      EXPECT_NEAR(learning_rate_at(config, static_cast<std::int64_t>(t)), expected,
                  1e-13 * expected)
          << c.at("name") << " step " << t;
    }
  }
}

TEST(Schedule, HoldsTheEndValueAfterTheHorizon) {
  const ScheduleConfig cosine{
      .type = ScheduleType::cosine, .base_learning_rate = 0.1, .total_steps = 10, .eta_min = 1e-3};
  EXPECT_DOUBLE_EQ(learning_rate_at(cosine, 10), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(cosine, 25), 1e-3);
  const ScheduleConfig poly{.type = ScheduleType::polynomial, .total_steps = 10};
  EXPECT_EQ(learning_rate_at(poly, 12), 0.0);
}

TEST(Schedule, RejectsConfigsThatDoNotFit) {
  EXPECT_THROW(learning_rate_at({.step_size = 0}, 1), Error);
  EXPECT_THROW(learning_rate_at({.total_steps = 0}, 1), Error);
  EXPECT_THROW(learning_rate_at({.warmup_start_factor = 0.0}, 1), Error);
  EXPECT_THROW(learning_rate_at({}, -1), Error);
}

}  // namespace
}  // namespace cajal::engine::train
