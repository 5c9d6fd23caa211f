// Runs one layer on both backends (oneDNN and its naive twin) with the same random weights and
// inputs, for the layer tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "engine/tensor.h"

namespace cajal::engine::testing {

// Uniform values in [lo, hi) from a fixed seed.
Tensor random_tensor(const Dims& dims, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f);
// max |got - expected| / max |expected|.
double relative_error(const Tensor& got, const Tensor& expected);
// Random weights for every spec of `layer` (variances positive), named "<layer>.<role>".
WeightMap random_weights(const Layer& layer, std::uint32_t seed);

struct Outputs {
  Tensor onednn;
  Tensor reference;
  double relative_error = 0.0;
};

// Builds the layer on each backend from `params`, loads the same random weights, prepares it for
// `input_dims` on `threads` threads and runs it on the same random inputs.
Outputs run_both(LayerType type, const nlohmann::json& params, const std::vector<Dims>& input_dims,
                 std::uint32_t seed = 7, int threads = 2);

// Runs only one backend.
Tensor run_one(Backend backend, LayerType type, const nlohmann::json& params,
               const std::vector<Tensor>& inputs, const WeightMap& weights, int threads = 2);

}  // namespace cajal::engine::testing
