// Pooling, 2D and 3D: max_pool and avg_pool (PyTorch's MaxPool/AvgPool{2,3}d, floor mode) and
// global_avg_pool (AdaptiveAvgPool{2,3}d(1): [N, C, 1, 1(, 1)]).
#pragma once

#include <array>
#include <cstdint>
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
  // Inference, after prepare(), a max_pool: reads its input and writes its output in the layout
  // [N, C / block, spatial..., block] (block C: channels last; for C of 8 or 16 that is the same
  // bytes as blocks of 8 or 16) in which the convolution before it writes and the ones after it
  // read (ConvolutionLayer::pass_blocked_through), instead of PyTorch's; `block` 8, 16 or C,
  // dividing C. Until the next prepare(). Returns whether it does.
  virtual bool take_blocked(std::int64_t /*block*/) { return false; }
  virtual std::int64_t channel_block() const { return 1; }  // 1: PyTorch's layout
  // Inference, after prepare(), a max_pool or avg_pool whose windows tile the input (stride equal
  // to the kernel, no padding): reads its input in the layout [N, C / block, spatial..., block]
  // (block C: channels last) in which the convolution before it writes
  // (ConvolutionLayer::pass_blocked_into), and writes PyTorch's layout, the same bytes as from
  // PyTorch's layout (LeNet-5's second pooling, before a flatten); `block` a multiple of 8 that
  // divides C. Until the next prepare(). Returns whether it does.
  virtual bool read_blocked(std::int64_t /*block*/) { return false; }
  // Training, after prepare(), a max_pool whose windows tile the input: whether it can read its
  // input and write its output in the layout [N, C / block, spatial..., block] (`block` a
  // multiple of 8 that divides C), and take and give their gradients so, with the bytes of
  // PyTorch's layout; take_blocked_in_training makes it do so until the next prepare()
  // (Net::link_training_layouts: a U-Net's skip, which a batch norm writes in blocks).
  virtual bool can_take_blocked_in_training(std::int64_t /*block*/) const { return false; }
  virtual void take_blocked_in_training(std::int64_t /*block*/) {}

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
  // Fills in a global pooling's kernel from the input dims; called by prepare's build().
  void set_global_kernel();

 private:
  PoolingParams params_;
};

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name);

namespace detail {
// One row of `outputs` outputs of a max or average pooling whose windows tile its input (stride
// equal to the kernel, no padding): output ow pools the kernel[0] x kernel[1] x kernel[2] (D, H,
// W) values from corner + ow * kernel[2], `plane` and `line` floats apart along D and H. Each
// window in the order kd, kh, kw, an average summed in float and divided by the window's size
// (pool_plain's rows, and a convolution's fused pooling: the same bytes).
void pool_tile_row(const float* corner, float* dst, std::int64_t outputs,
                   const std::array<std::int64_t, 3>& kernel, std::int64_t plane, std::int64_t line,
                   bool max);
}  // namespace detail

}  // namespace cajal::engine
