// A linear classifier (logits = x W^T + b) with a hand-written backward pass, so the training
// library can be tested end to end without the engine's layers.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "engine/train/parameter.h"

namespace cajal::engine::train::testing {

struct LinearModel {
  Tensor weights;  // [classes, features]
  Tensor bias;     // [classes]
  Tensor diff_weights;
  Tensor diff_bias;

  LinearModel(std::int64_t classes, std::int64_t features);
  std::vector<Parameter> parameters();
  // x [N, features] -> logits [N, classes]
  Tensor forward(const Tensor& x) const;
  // Sets the gradients from x and d loss / d logits.
  void backward(const Tensor& x, const Tensor& diff_logits);
};

}  // namespace cajal::engine::train::testing
