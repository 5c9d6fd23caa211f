// Pooling, 2D and 3D: max_pool and avg_pool (PyTorch's MaxPool/AvgPool{2,3}d, floor mode) and
// global_avg_pool (AdaptiveAvgPool{2,3}d(1): [N, C, 1, 1(, 1)]).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

struct PoolingParams {
  Dims kernel_size;               // one per spatial axis; its length sets 2D or 3D
  Dims stride;                    // default kernel_size
  Dims padding;                   // default 0, at most half the kernel
  bool count_include_pad = true;  // avg_pool only
};

class PoolingLayer : public Layer {
 public:
  using Layer::Layer;
  // For global_avg_pool, valid after prepare(): the kernel covers the whole input.
  const PoolingParams& params() const { return params_; }

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
  // Fills in a global pooling's kernel from the input dims; called by prepare's build().
  void set_global_kernel();

 private:
  PoolingParams params_;
};

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name);

}  // namespace cajal::engine
