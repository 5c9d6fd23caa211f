#include "engine/train/init.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace cajal::engine::train {

Fans compute_fans(const Dims& dims) {
  if (dims.size() < 2) {
    throw Error("weights for fan-in / fan-out", "at least 2 dims ([out, in, ...])",
                to_string(dims));
  }
  std::int64_t receptive = 1;
  for (std::size_t i = 2; i < dims.size(); ++i)
    receptive *= dims[i];
  return {dims[1] * receptive, dims[0] * receptive};
}

InitScale init_scale(const InitConfig& config, const Dims& weight_dims) {
  const auto fans = compute_fans(weight_dims);
  if (fans.fan_in < 1 || fans.fan_out < 1) {
    throw Error("weights for initialisation", "no zero dim", to_string(weight_dims));
  }
  const auto fan_in = static_cast<double>(fans.fan_in);
  const auto fan_out = static_cast<double>(fans.fan_out);
  const double fan = config.mode == FanMode::fan_in ? fan_in : fan_out;
  const double kaiming_gain =
      std::sqrt(2.0 / (1.0 + config.negative_slope * config.negative_slope));
  InitScale scale;
  switch (config.scheme) {
    case InitScheme::kaiming_uniform:
    case InitScheme::kaiming_normal:
      scale.stddev = kaiming_gain / std::sqrt(fan);
      break;
    case InitScheme::xavier_uniform:
    case InitScheme::xavier_normal:
      scale.stddev = config.xavier_gain * std::sqrt(2.0 / (fan_in + fan_out));
      break;
    case InitScheme::pytorch_default:
      scale.stddev = 1.0 / std::sqrt(3.0 * fan_in);
      break;
  }
  scale.bound = std::sqrt(3.0) * scale.stddev;
  return scale;
}

void initialize_weights(Tensor& weights, const InitConfig& config, Generator& generator) {
  const auto scale = init_scale(config, weights.dims());
  const bool normal =
      config.scheme == InitScheme::kaiming_normal || config.scheme == InitScheme::xavier_normal;
  for (auto& w : weights.values()) {
    w = static_cast<float>(normal ? generator.normal(0.0, scale.stddev)
                                  : generator.uniform(-scale.bound, scale.bound));
  }
}

void initialize_bias(Tensor& bias, const Dims& weight_dims, const InitConfig& config,
                     Generator& generator) {
  if (config.bias == BiasInit::zero) {
    for (auto& b : bias.values())
      b = 0.0f;
    return;
  }
  const auto fan_in = compute_fans(weight_dims).fan_in;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  for (auto& b : bias.values())
    b = static_cast<float>(generator.uniform(-bound, bound));
}

}  // namespace cajal::engine::train
