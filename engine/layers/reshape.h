// Layers that move no numbers: flatten ([N, C, ...] -> [N, C * ...], no keys) and dropout
// (identity at inference; key p in [0, 1), default 0.5, kept for the record).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

class ReshapeLayer : public Layer {
 public:
  using Layer::Layer;
  // Both copy their input unchanged; a Net may alias the blobs instead.
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override;

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
};

std::unique_ptr<Layer> make_reshape(LayerType type, std::string name);

}  // namespace cajal::engine
