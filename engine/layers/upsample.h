// Upsampling by integer factors, 2D and 3D: PyTorch's nn.Upsample(scale_factor=..., mode=...)
// with mode 'nearest', or 'linear' (bilinear / trilinear, align_corners=False).
// Keys: scale_factor (array of 2 or 3 integers >= 1), mode ('nearest').
// Backward: oneDNN's resampling_backward, the forward's adjoint.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

class UpsampleLayer : public Layer {
 public:
  using Layer::Layer;
  const Dims& scale_factor() const { return scale_factor_; }
  bool linear() const { return linear_; }

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  Dims scale_factor_;
  bool linear_ = false;
};

std::unique_ptr<Layer> make_upsample(LayerType type, std::string name);

}  // namespace cajal::engine
