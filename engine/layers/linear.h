// Linear (fully connected), PyTorch's nn.Linear on [N, in_features]: flatten before it.
// Keys: in_features, out_features, bias (true). weight [out, in], bias [out].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

class LinearLayer : public Layer {
 public:
  using Layer::Layer;
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  bool bias() const { return bias_; }
  std::vector<WeightSpec> weight_specs() const override;
  std::int64_t flops() const override { return 2 * dst_dims()[0] * in_features_ * out_features_; }

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  std::int64_t in_features_ = 0;
  std::int64_t out_features_ = 0;
  bool bias_ = true;
};

std::unique_ptr<Layer> make_linear(LayerType type, std::string name);

}  // namespace cajal::engine
