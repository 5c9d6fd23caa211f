// Parameter: a trainable tensor and its gradient, as optimisers see them. The tensors belong to a
// layer (Layer::mutable_weight, Layer::grad); Net::parameters() lists them.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace cajal::engine {

struct Parameter {
  std::string name;         // "<layer>.<role>", as in the weights file
  Tensor* value = nullptr;  // PyTorch's layout
  Tensor* grad = nullptr;   // same dims
};

}  // namespace cajal::engine
