// Runs one layer's training forward and backward on either backend, and finite differences of
// the naive twin, for the backward tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "engine/tensor.h"

namespace cajal::engine::testing {

struct Gradients {
  std::vector<Tensor> diff_src;  // one per input
  WeightMap diff_weights;        // by role ("weight", "bias")
};

// A training prepare(), forward() and one backward() with `diff_dst`; every diff_src wanted.
Gradients run_backward(Backend backend, LayerType type, const nlohmann::json& params,
                       const std::vector<Tensor>& inputs, const WeightMap& weights,
                       const Tensor& diff_dst, int threads = 2);

// The same gradients by central differences of the loss sum(dst * diff_dst) on the naive twin:
// (loss(v + eps) - loss(v - eps)) / (2 eps) for every input value and weight value. Exact up to
// rounding for layers linear in what changes (eps may be large then); for max pooling, eps must
// be below half the gap between values.
Gradients finite_differences(LayerType type, const nlohmann::json& params,
                             const std::vector<Tensor>& inputs, const WeightMap& weights,
                             const Tensor& diff_dst, double eps);

// max over the tensors of relative_error, naming the worst in `worst`.
double worst_relative_error(const Gradients& got, const Gradients& expected, std::string& worst);

// Inputs and weights as in run_both, the dst dims of the layer, and a random diff_dst.
struct BackwardCase {
  std::vector<Tensor> inputs;
  WeightMap weights;
  Tensor diff_dst;
};
BackwardCase make_backward_case(LayerType type, const nlohmann::json& params,
                                const std::vector<Dims>& input_dims, std::uint32_t seed = 7);

}  // namespace cajal::engine::testing
