// Weight initialisation as torch.nn.init computes it (issue 4): He (Kaiming) and Glorot (Xavier),
// uniform and normal, and PyTorch's default for Conv/Linear, drawn from cajal's own seeded
// Generator so the same seed gives the same weights everywhere.
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "engine/train/random.h"

namespace cajal::engine::train {

// torch.nn.init._calculate_fan_in_and_fan_out for [OC, IC, K...] or [out, in]:
// fan_in = IC * prod(K), fan_out = OC * prod(K). Throws cajal::Error for fewer than 2 dims.
struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};
Fans compute_fans(const Dims& dims);

enum class InitScheme {
  kaiming_uniform,  // U(-b, b), b = gain sqrt(3 / fan)
  kaiming_normal,   // N(0, gain / sqrt(fan))
  xavier_uniform,   // U(-b, b), b = gain sqrt(6 / (fan_in + fan_out))
  xavier_normal,    // N(0, gain sqrt(2 / (fan_in + fan_out)))
  pytorch_default,  // Conv/Linear reset_parameters: kaiming_uniform with a = sqrt(5), i.e.
                    // U(-1/sqrt(fan_in), 1/sqrt(fan_in))
};
enum class FanMode { fan_in, fan_out };
enum class BiasInit {
  zero,
  pytorch_default,  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of the weights
};

struct InitConfig {
  InitScheme scheme = InitScheme::kaiming_normal;
  FanMode mode = FanMode::fan_in;  // Kaiming only
  // Kaiming's gain is sqrt(2 / (1 + negative_slope^2)): 0 for ReLU (gain sqrt 2).
  double negative_slope = 0.0;
  double xavier_gain = 1.0;  // Xavier only
  BiasInit bias = BiasInit::zero;
};

// The gain-scaled standard deviation and uniform bound the scheme uses for these weight dims.
struct InitScale {
  double stddev = 0.0;
  double bound = 0.0;  // uniform schemes: U(-bound, bound)
};
InitScale init_scale(const InitConfig& config, const Dims& weight_dims);

// Fills `weights` ([OC, IC, K...] or [out, in]) from `generator`.
void initialize_weights(Tensor& weights, const InitConfig& config, Generator& generator);
// Fills `bias` from `generator` as config.bias says; `weight_dims` give fan_in.
void initialize_bias(Tensor& bias, const Dims& weight_dims, const InitConfig& config,
                     Generator& generator);

}  // namespace cajal::engine::train
