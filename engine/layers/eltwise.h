// Element-wise activations: relu, leaky_relu, elu, sigmoid, tanh, gelu (exact, erf), and
// prelu (a learned slope per channel, or one for all). Forward on oneDNN but tanh and prelu (by
// hand: detail::tanh_by_hand, and a loop per channel). Backward: oneDNN's eltwise_backward (from
// dst for relu, elu, sigmoid and tanh in training, as v2.6 offers; from src for gelu) and
// prelu_backward (the slope's gradient too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"
#include "engine/layers/convolution.h"

namespace cajal::engine {

// Keys: leaky_relu {negative_slope: 0.01}, elu {alpha: 1.0}; the others take none.
class EltwiseLayer : public Layer {
 public:
  using Layer::Layer;
  // The activation with its parameter, as a convolution can fuse it.
  PostOp activation() const { return {type(), alpha_}; }

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  float alpha_ = 0.0f;
};

// Keys: num_parameters (1 or C, default 1). weight [num_parameters].
class PreluLayer : public Layer {
 public:
  using Layer::Layer;
  std::int64_t num_parameters() const { return num_parameters_; }
  std::vector<WeightSpec> weight_specs() const override { return {{"weight", {num_parameters_}}}; }

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  std::int64_t num_parameters_ = 1;
};

std::unique_ptr<Layer> make_eltwise(LayerType type, std::string name);
std::unique_ptr<Layer> make_prelu(LayerType type, std::string name);

}  // namespace cajal::engine
