#include "tests/train/linear_model.h"

namespace cajal::engine::train::testing {

LinearModel::LinearModel(std::int64_t classes, std::int64_t features)
    : weights({classes, features}),
      bias({classes}),
      diff_weights({classes, features}),
      diff_bias({classes}) {}

std::vector<Parameter> LinearModel::parameters() {
  return {{"fc.weights", &weights, &diff_weights}, {"fc.bias", &bias, &diff_bias}};
}

Tensor LinearModel::forward(const Tensor& x) const {
  const auto n = x.dim(0), f = x.dim(1), c = weights.dim(0);
  Tensor logits({n, c});
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t k = 0; k < c; ++k) {
      double acc = bias.data()[k];
      for (std::int64_t j = 0; j < f; ++j) {
        acc += double{x.data()[i * f + j]} * weights.data()[k * f + j];
      }
      logits.data()[i * c + k] = static_cast<float>(acc);
    }
  }
  return logits;
}

void LinearModel::backward(const Tensor& x, const Tensor& diff_logits) {
  const auto n = x.dim(0), f = x.dim(1), c = weights.dim(0);
  for (std::int64_t k = 0; k < c; ++k) {
    double db = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      db += diff_logits.data()[i * c + k];
    diff_bias.data()[k] = static_cast<float>(db);
    for (std::int64_t j = 0; j < f; ++j) {
      double dw = 0.0;
      for (std::int64_t i = 0; i < n; ++i) {
        dw += double{diff_logits.data()[i * c + k]} * x.data()[i * f + j];
      }
      diff_weights.data()[k * f + j] = static_cast<float>(dw);
    }
  }
}

}  // namespace cajal::engine::train::testing
