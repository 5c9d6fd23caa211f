// Convolution and transposed convolution, 2D and 3D: PyTorch's Conv{2,3}d, ConvTranspose{2,3}d.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

struct ConvolutionParams {
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;
  std::int64_t groups = 1;
  Dims kernel_size;     // one per spatial axis; its length sets 2D or 3D
  Dims stride;          // default 1
  Dims padding;         // default 0, both sides
  Dims dilation;        // default 1
  Dims output_padding;  // transposed only, default 0
  bool bias = true;
};

// A layer after the convolution, fused into it as a oneDNN post-op, applied in order: an
// activation (relu, leaky_relu, elu, sigmoid, tanh, gelu; alpha: slope or elu's alpha), or add,
// which adds the convolution's second input (a residual) of the output's dims.
struct PostOp {
  LayerType type = LayerType::relu;
  float alpha = 0.0f;
};

// A max or average pooling after the convolution (and its activation), fused into it: windows
// that tile the convolution's output (stride equal to the kernel, no padding).
struct FusedPool {
  LayerType type = LayerType::max_pool;
  Dims kernel;
};

// weight [OC, IC/groups, K...] (transposed: [IC, OC/groups, K...]), bias [OC].
class ConvolutionLayer : public Layer {
 public:
  using Layer::Layer;
  const ConvolutionParams& params() const { return params_; }
  bool transposed() const { return type() == LayerType::transposed_convolution; }
  std::vector<WeightSpec> weight_specs() const override;
  std::int64_t flops() const override;

  // Folds a per-output-channel scale and shift (a batch norm after it) into weight and bias.
  void fold_scale_shift(std::span<const float> scale, std::span<const float> shift);
  // Appends a post-op; call before prepare(). An add makes the layer take a second input.
  void fuse(const PostOp& op);
  const std::vector<PostOp>& post_ops() const { return post_ops_; }
  // Inference: takes in the max_pool or avg_pool after it (and after its fused activation) when
  // that pooling's windows tile the output (stride equal to the kernel, no padding) and this
  // layer runs by hand (thin_convolution) with no post-op but tanh: the convolution's rows are
  // made, activated and pooled on each thread, its output never written, the same bytes as the
  // layers one after another. The layer's output is then the pooling's. Call before prepare();
  // returns whether it did.
  bool fuse_pool(LayerType type, const Dims& kernel, const Dims& stride, const Dims& padding);
  const std::optional<FusedPool>& fused_pool() const { return pool_; }
  // After prepare(): whether the engine's own thin rows run this layer (few channels, on
  // PyTorch's layout) rather than a oneDNN primitive.
  virtual bool runs_thin_rows() const { return false; }
  // After prepare(): whether this transposed convolution runs by hand (doubling_convolution:
  // stride 2, a 3-tap kernel, into few channels) rather than oneDNN's sub-pixel convolutions.
  virtual bool runs_doubling() const { return false; }
  // After prepare(): whether this convolution of one channel into 16 runs by hand
  // (stem_convolution, channels-last) rather than by its oneDNN primitive.
  virtual bool runs_stem() const { return false; }
  // After prepare(): whether this convolution of a one-voxel kernel into a few channels runs by
  // hand in training (detail::pointwise_forward and its gradients) rather than by oneDNN.
  virtual bool runs_pointwise() const { return false; }
  // After prepare(): whether this transposed convolution whose kernel equals its stride runs its
  // forward by hand (unpool_convolution, or its blocked twin where linked) rather than by oneDNN.
  virtual bool runs_unpool() const { return false; }
  bool adds_residual() const;
  // A reader of this layer's output: a convolution and the input it reads it as (0: its source,
  // 1: the residual its fused add adds).
  struct BlockedReader {
    ConvolutionLayer* layer = nullptr;
    std::size_t input = 0;
  };
  // Inference, after all are prepared, when this layer's output is read by these convolutions
  // alone: if this layer writes a blocked layout that each reads as it is (as its source, or as
  // its residual where it writes that same layout; channels in whole blocks, so the blob's
  // size), it writes that layout into the blob and they read it from there, and the reorders to
  // PyTorch's layout and back are skipped (a residual is copied as it is). The blob then holds
  // values only they can read. Returns whether they are so linked.
  virtual bool pass_blocked_to(const std::vector<BlockedReader>& /*readers*/) { return false; }
  // The same through the layer between: an instance norm (with its activation taken in) or a
  // max pooling that alone reads this layer's output and whose output these convolutions alone
  // read. Where that layer takes this layer's layout as it is (NormalizationLayer::take_blocked,
  // PoolingLayer::take_blocked), this layer writes it into the blob, that layer reads it and
  // writes its output in the same layout, and the readers read that. Returns whether they are
  // so linked.
  virtual bool pass_blocked_through(Layer& /*middle*/,
                                    const std::vector<BlockedReader>& /*readers*/) {
    return false;
  }
  // The same into a pooling that alone reads this layer's output and writes PyTorch's layout
  // from it (PoolingLayer::read_blocked: LeNet-5's second pooling, before a flatten).
  virtual bool pass_blocked_into(Layer& /*reader*/) { return false; }
  // Training, after prepare(): the channel block of the layout [N, C / block, spatial..., block]
  // (oneDNN's nCdhw16c or 8c, or channels last) in which this layer's primitive writes its
  // output and reads that output's gradient (training_output_block), or reads its input and
  // writes that input's gradient (training_input_block), when it can take them from and give
  // them to a batch norm as they are; 0 when it cannot (a layer run by hand, which reads PyTorch's
  // layout, or a layout with padded channels).
  virtual std::int64_t training_output_block() const { return 0; }
  virtual std::int64_t training_input_block() const { return 0; }
  // From now until the next prepare(), the output and its gradient (write_blocked_in_training),
  // or the input and its gradient (read_blocked_in_training), are in that layout in the blobs
  // themselves, and their reorders are skipped (Net::link_training_layouts).
  virtual void write_blocked_in_training() {}
  virtual void read_blocked_in_training() {}
  // After pass_blocked_to linked it: `blob`, the output it wrote in its blocked layout, in
  // PyTorch's layout into `plain` (as many values) by one reorder.
  virtual void copy_plain(const Tensor& blob, float* plain) const;

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;
  // The convolution's output dims for input dims `src` (before a fused pooling).
  Dims convolved_dims(const Dims& src) const;

 private:
  ConvolutionParams params_;
  std::vector<PostOp> post_ops_;
  std::optional<FusedPool> pool_;
};

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name);

}  // namespace cajal::engine
