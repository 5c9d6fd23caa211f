// Learning-rate schedules as pure functions of the step (or epoch) index, so a resumed run gets
// exactly the rate it would have had (issue 4). The closed forms of torch.optim.lr_scheduler.
#pragma once

#include <cstdint>

namespace cajal::engine::train {

enum class ScheduleType {
  constant,    // base
  step,        // StepLR: base * gamma^floor(t / step_size)
  polynomial,  // PolynomialLR / nnU-Net: base * (1 - min(t, T) / T)^exponent
  cosine,      // CosineAnnealingLR: eta_min + (base - eta_min) (1 + cos(pi min(t, T) / T)) / 2
};

struct ScheduleConfig {
  ScheduleType type = ScheduleType::constant;
  double base_learning_rate = 1e-3;
  std::int64_t step_size = 1;    // step
  double gamma = 0.1;            // step
  std::int64_t total_steps = 1;  // T for polynomial and cosine, counted after the warm-up
  double exponent = 0.9;         // polynomial (nnU-Net's 0.9)
  double eta_min = 0.0;          // cosine
  // Linear warm-up in front (LinearLR, then SequentialLR): for t < warmup_steps the rate is
  // base * (warmup_start_factor + (1 - warmup_start_factor) t / warmup_steps); from then on the
  // schedule above runs with index t - warmup_steps.
  std::int64_t warmup_steps = 0;
  double warmup_start_factor = 1.0 / 3.0;  // LinearLR's default
};

// Throws cajal::Error if the config does not fit (step_size or total_steps < 1, negative
// warm-up, a start factor outside (0, 1], a negative rate).
void validate(const ScheduleConfig& config);
// The rate at step `t` >= 0 (throws cajal::Error for t < 0). Validates the config.
double learning_rate_at(const ScheduleConfig& config, std::int64_t t);

}  // namespace cajal::engine::train
