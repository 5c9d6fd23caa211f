#include "engine/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "core/error.h"

namespace cajal::engine::train {

void validate(const ScheduleConfig& c) {
  const auto require = [](bool ok, const std::string& what, const std::string& expected,
                          double got) {
    if (!ok)
      throw Error("learning-rate schedule " + what, expected, std::to_string(got));
  };
  require(c.base_learning_rate >= 0.0, "base rate", ">= 0", c.base_learning_rate);
  require(c.step_size >= 1, "step size", ">= 1", static_cast<double>(c.step_size));
  require(c.total_steps >= 1, "total steps", ">= 1", static_cast<double>(c.total_steps));
  require(c.warmup_steps >= 0, "warm-up steps", ">= 0", static_cast<double>(c.warmup_steps));
  require(c.warmup_start_factor > 0.0 && c.warmup_start_factor <= 1.0, "warm-up start factor",
          "in (0, 1]", c.warmup_start_factor);
  require(c.eta_min >= 0.0, "eta_min", ">= 0", c.eta_min);
}

double learning_rate_at(const ScheduleConfig& c, std::int64_t t) {
  validate(c);
  if (t < 0)
    throw Error("learning-rate schedule step", ">= 0", std::to_string(t));
  const double base = c.base_learning_rate;
  if (t < c.warmup_steps) {
    const double fraction = static_cast<double>(t) / static_cast<double>(c.warmup_steps);
    return base * (c.warmup_start_factor + (1.0 - c.warmup_start_factor) * fraction);
  }
  const std::int64_t i = t - c.warmup_steps;
  const double progress =
      static_cast<double>(std::min(i, c.total_steps)) / static_cast<double>(c.total_steps);
  switch (c.type) {
    case ScheduleType::constant:
      return base;
    case ScheduleType::step:
      return base * std::pow(c.gamma, static_cast<double>(i / c.step_size));
    case ScheduleType::polynomial:
      return base * std::pow(1.0 - progress, c.exponent);
    case ScheduleType::cosine:
      return c.eta_min + (base - c.eta_min) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
  }
  CAJAL_CHECK(false) << "unknown schedule type " << static_cast<int>(c.type);
  return 0.0;
}

}  // namespace cajal::engine::train
