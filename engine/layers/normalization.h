// Normalisation: batch_norm (inference, running statistics; PyTorch's BatchNorm{1,2,3}d),
// instance_norm and group_norm (statistics of each sample; InstanceNorm{2,3}d, GroupNorm).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

struct NormalizationParams {
  std::int64_t channels = 0;  // num_features, or num_channels for group_norm
  std::int64_t groups = 1;    // num_groups; channels for instance_norm
  double eps = 1e-5;
  bool affine = true;  // instance_norm defaults to false, as in PyTorch
};

// Keys: batch_norm and instance_norm {num_features, eps, affine},
// group_norm {num_groups, num_channels, eps, affine}.
// Weights: weight [C], bias [C] when affine; batch_norm also running_mean [C], running_var [C].
class NormalizationLayer : public Layer {
 public:
  using Layer::Layer;
  const NormalizationParams& params() const { return params_; }
  std::vector<WeightSpec> weight_specs() const override;
  // batch_norm as y = x * scale[c] + shift[c], for folding into a convolution before it.
  void scale_shift(std::vector<float>& scale, std::vector<float>& shift) const;

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  NormalizationParams params_;
};

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name);

}  // namespace cajal::engine
