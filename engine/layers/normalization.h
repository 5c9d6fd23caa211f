// Normalisation: batch_norm (PyTorch's BatchNorm{1,2,3}d: running statistics at inference; batch
// statistics in training, updating the running ones), instance_norm and group_norm (statistics of
// each sample; InstanceNorm{2,3}d without running statistics, GroupNorm).
// Training forward and backward of batch_norm by hand (batch statistics; a gradient at inference
// uses the running ones); instance_norm and group_norm by layer_normalization_backward
// over [N * G, C/G * spatial] rows with the per-channel affine part by hand, after a training
// forward only (it keeps the statistics).
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
  bool affine = true;     // instance_norm defaults to false, as in PyTorch
  double momentum = 0.1;  // batch_norm: running = (1 - momentum) * running + momentum * batch
};

// Keys: batch_norm {num_features, eps, affine, momentum}, instance_norm {num_features, eps,
// affine}, group_norm {num_groups, num_channels, eps, affine}.
// Weights: weight [C], bias [C] when affine; batch_norm also running_mean [C], running_var [C]
// (not trainable).
class NormalizationLayer : public Layer {
 public:
  using Layer::Layer;
  const NormalizationParams& params() const { return params_; }
  std::vector<WeightSpec> weight_specs() const override;
  std::vector<std::string> trainable_roles() const override;
  // batch_norm as y = x * scale[c] + shift[c], for folding into a convolution before it.
  void scale_shift(std::vector<float>& scale, std::vector<float>& shift) const;
  // Training, after prepare(): with `relu`, a batch_norm by hand writes max(y, 0) (a ReLU after
  // it, which the Net then skips) and its backward takes the gradient of that output, masked
  // where y <= 0. Returns whether the layer now does so (only a batch_norm in training can).
  virtual bool fuse_relu_in_training(bool /*relu*/) { return false; }
  // Training, after prepare(): a batch_norm by hand reads its input in the layout
  // [N, C / in_block, spatial..., in_block] and writes its output in that of out_block (1:
  // PyTorch's layout; else a multiple of 8 that divides C), and its backward takes and gives the
  // gradients so: the blocked layouts in which the convolution before it writes and the one after
  // it reads (Net: ConvolutionLayer::write_blocked_in_training). The same bytes in any layout.
  // Until the next prepare(). Returns whether it does (only with C a multiple of 8).
  virtual bool take_layouts_in_training(std::int64_t /*in_block*/, std::int64_t /*out_block*/) {
    return false;
  }
  // Inference: an instance_norm or group_norm takes in the relu, leaky_relu or prelu after it,
  // as y = v > 0 ? v : slopes[c] * v on its output v (the bytes the activation gives), one slope
  // per channel; its forward is then by hand, the statistics and the output in one pass each.
  // Call before prepare(); returns whether it did.
  bool fuse_activation(std::vector<float> slopes);
  const std::vector<float>& fused_slopes() const { return slopes_; }
  // Inference, after prepare(), with a fused activation, an instance norm (or a group norm of one
  // channel per group): reads its input and writes its output in the layout
  // [N, C / block, spatial..., block] (channels last: block = C) in which the convolution before
  // it writes and the ones after it read (ConvolutionLayer::pass_blocked_through), instead of
  // PyTorch's; `block` a multiple of 8 that divides C. Until the next prepare(). Returns whether
  // it does.
  bool take_blocked(std::int64_t block);
  std::int64_t channel_block() const { return block_; }  // 1: PyTorch's layout

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
  // batch_norm in training, after a forward over `count` values per channel: moves the running
  // statistics towards the batch's (biased `var` is made unbiased first), as PyTorch does.
  void update_running_stats(const std::vector<double>& mean, const std::vector<double>& var,
                            std::int64_t count) const;
  void forget_blocked() { block_ = 1; }

 private:
  NormalizationParams params_;
  std::vector<float> slopes_;  // fuse_activation's
  std::int64_t block_ = 1;     // take_blocked's
};

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name);

}  // namespace cajal::engine
