// Checks a layer's backward pass (issue 4): the oneDNN layer against its naive twin on the same
// random inputs, weights and diff_dst, and the naive twin against central finite differences of
// the scalar loss sum(dst * diff_dst), in double.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "engine/tensor.h"

namespace cajal::engine::testing {

struct GradCase {
  std::string name;
  LayerType type;
  nlohmann::json params;
  std::vector<Dims> inputs;
  bool training = true;
  // Keeps random inputs at least this far from 0, where relu-like layers have a kink that finite
  // differences must not straddle.
  float min_abs_input = 0.0f;
};

void PrintTo(const GradCase& c, std::ostream* os);

// Random inputs, weights (variances positive) and diff_dst for a case, from a seed.
struct GradProblem {
  std::vector<Tensor> inputs;
  WeightMap weights;  // "layer.<role>"
  Tensor diff_dst;
};
GradProblem make_problem(const GradCase& c, std::uint32_t seed);

// What one forward and backward gave.
struct GradResult {
  Tensor dst;
  std::vector<Tensor> diff_src;
  std::map<std::string, Tensor> grads;    // trainable role -> gradient
  std::map<std::string, Tensor> weights;  // every role after the forward (running statistics)
};

// Builds the layer "layer" on one backend (training as the case says; dropout seeded with
// `dropout_seed`), loads the problem's weights, runs forward then backward.
GradResult run_backward(Backend backend, const GradCase& c, const GradProblem& problem,
                        int threads = 2, std::uint64_t dropout_seed = 1);

// Relative error (max |got - expected| / max |expected|) of every output of the oneDNN layer
// against the naive twin's: "dst", "diff_src0", ..., "grad.weight", ..., "weight.running_mean".
std::map<std::string, double> compare_with_twin(const GradCase& c, std::uint32_t seed = 7);

// Relative error of the naive twin's diff_src and trainable gradients against central finite
// differences with the given step: "diff_src0", ..., "grad.weight", ...
std::map<std::string, double> compare_with_finite_differences(const GradCase& c,
                                                              std::uint32_t seed = 7,
                                                              double step = 1e-3);

// Every entry at most `tolerance`, naming the ones above it.
::testing::AssertionResult all_within(const std::map<std::string, double>& errors,
                                      double tolerance);

class LayerGrad : public ::testing::TestWithParam<GradCase> {};

}  // namespace cajal::engine::testing
