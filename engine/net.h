// Net: a graph of layers over named blobs, run in the order given. Activation buffers are reused
// by liveness: a blob's buffer returns to the pool after the last layer that reads it. In training
// every activation is kept for backward(), which runs the layers in reverse.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/layer.h"
#include "engine/tensor.h"
#include "engine/train/parameter.h"

namespace cajal::engine {

class ConvolutionLayer;
class NormalizationLayer;

// One layer (params loaded) reading blobs `inputs` and writing blob `output`.
struct Node {
  std::unique_ptr<Layer> layer;
  std::vector<std::string> inputs;
  std::string output;
};

struct NetOptions {
  // At load_weights: a batch_norm right after a convolution becomes that convolution's weights.
  bool fold_batch_norm = true;
  // At load_weights: an activation, or an add of a residual, right after a convolution becomes
  // its post-op.
  bool fuse_post_ops = true;
  // In inference, an activation buffer planned at this many bytes or more is freed after the
  // last layer that reads its blob and allocated again when next written, so only the buffers of
  // live blobs are resident; smaller ones are kept for the next forward(). By default every
  // buffer is kept: the fastest for many forward() calls of one shape (batches of regions,
  // windows: freeing and faulting in a 16 MiB buffer at each batch cost `cajal classify` 20 %).
  // A single pass over a large input (segment's whole volume or slabs) sets it lower.
  std::int64_t release_bytes = std::numeric_limits<std::int64_t>::max();
  // In training, batch norms take and give the blocked layouts of the convolutions around them
  // (Net::link_training_layouts); false keeps PyTorch's layout between all layers (the same
  // bytes; for tests).
  bool blocked_training_layouts = true;
  // Neither folds nor fuses: every layer keeps its own weights and backward pass.
  static NetOptions for_training() { return {.fold_batch_norm = false, .fuse_post_ops = false}; }
};

class Net {
 public:
  // Checks the graph: unique layer names, each blob written once and read only after it is
  // written, outputs exist. Throws cajal::Error naming the layer or blob.
  Net(std::vector<std::string> inputs, std::vector<Node> nodes, std::vector<std::string> outputs,
      NetOptions options = {});

  // Every layer takes its tensors by name; a tensor no layer takes is an error. Then folds and
  // fuses as the options say. Once per Net.
  void load_weights(const WeightMap& weights);
  // NetOptions::release_bytes, from the next prepare() on.
  void set_release_bytes(std::int64_t bytes) { options_.release_bytes = bytes; }
  // Builds every layer for these input dims and plans the activation buffers.
  void prepare(const Context& ctx, const std::map<std::string, Dims>& input_dims);
  // Inputs must have the dims given to prepare(). Returns the output blobs; in inference they are
  // moved out of the activation buffers, not copied (the next forward() allocates them again).
  std::map<std::string, Tensor> forward(const std::map<std::string, Tensor>& inputs);

  const std::vector<std::string>& inputs() const { return inputs_; }
  const std::vector<std::string>& outputs() const { return outputs_; }
  // The layers that run, after folding and fusing.
  const std::vector<Node>& nodes() const { return nodes_; }
  // Valid after prepare().
  const Dims& blob_dims(const std::string& blob) const;
  // Parameters as loaded, before folding.
  std::int64_t parameter_count() const { return parameter_count_; }
  // Floating-point operations of one forward(), after prepare().
  std::int64_t flops() const;
  // Bytes of the activation buffers prepare() planned (graph inputs not included).
  std::int64_t activation_bytes() const;
  // After prepare(): the most bytes a forward() holds at once, over its layers: the buffers of
  // the blobs live at that layer (each buffer under release_bytes counted whole, for the whole
  // pass), the outputs, and the convolutions' shared layout copies. Graph inputs not included.
  // In training, activation_bytes().
  std::int64_t peak_bytes() const { return peak_bytes_; }
  // Inference: the reads of a blob that a convolution wrote in its blocked layout, by the
  // convolutions that read it so (ConvolutionLayer::pass_blocked_to), or by the instance norm or
  // max pooling between (one read) and the convolutions that read its output so
  // (pass_blocked_through), as planned by prepare().
  std::size_t blocked_links() const { return blocked_links_; }
  // Training: the convolutions that write their output for the batch norm after them, or read
  // their input from the batch norm or concat before them, in their blocked layout
  // (link_training_layouts), as planned by prepare().
  std::size_t training_layout_links() const { return training_layout_links_; }
  // Bytes the activation buffers hold now (after a forward() in inference, those under
  // release_bytes).
  std::int64_t resident_bytes() const;

  // Training (issue 4). Call before prepare() (switching a prepared Net needs prepare() again).
  // Throws unless the Net was built with NetOptions::for_training(). Every layer trains (batch
  // norm uses the batch's statistics), and forward() first re-reads every weight (so in-place
  // changes by an optimiser take effect) and keeps every activation for backward().
  void set_training(bool training);
  bool training() const { return training_; }
  // After a training forward(): takes the gradients of some outputs (an output without one has
  // a zero gradient), adds every layer's weight gradients to its grad() and returns the
  // gradients of the graph inputs named in `diff_inputs` (none by default). A blob read by
  // several layers gets the sum of their gradients.
  std::map<std::string, Tensor> backward(const std::map<std::string, Tensor>& diff_outputs,
                                         const std::vector<std::string>& diff_inputs = {});
  // The trainable tensors (weights, biases; not running statistics) of the layers not frozen.
  std::vector<Parameter> parameters();
  // Leaves out of parameters() every layer whose name starts with `prefix` (transfer learning);
  // backward() still runs through them. Throws if no layer name starts with it.
  void freeze(const std::string& prefix);
  bool frozen(const Layer& layer) const;
  void zero_grad();
  // Every layer re-derives its copies of the weights (a training forward() does this itself).
  void weights_changed();
  // The current values in PyTorch's layout, running statistics included, named as
  // load_weights() takes them ("<layer>.<role>"). Throws if load_weights folded or fused.
  WeightMap weights() const;

 private:
  void fold_and_fuse();
  // Inference with batch 1: the concats whose inputs are distinct blobs, each written by a layer
  // (no concat, no other concat's input) and dead once the concat's blob is (no graph output).
  // Those layers write straight into their channels of the concat's buffer and the concat does
  // nothing (its copy was 6-9 % of a U-Net's forward); the buffer is taken when the first of
  // them runs. Sets in_place_ and concat_in_place_.
  void plan_concats_in_place(const std::map<std::string, std::size_t>& last_read);
  // Inference: each convolution whose blob only convolutions read, not in place into a concat
  // or a graph output, offers them its blocked layout (ConvolutionLayer::pass_blocked_to); one
  // whose blob an instance norm or a max pooling alone reads, whose blob only convolutions read,
  // offers it to that layer and them (ConvolutionLayer::pass_blocked_through). A convolution
  // written in place into a concat whose blob convolutions read too (a U-Net's skip, read by the
  // next stage's downsampling) writes its own blob in its blocked layout for them instead, when
  // another of the concat's inputs stays in place, and the concat copies it back to PyTorch's
  // layout into its place (concat_copies_): one reorder instead of one for each of them.
  void link_blocked_convolutions();
  // Training: a ReLU that alone reads a batch norm's output is applied by that batch norm
  // (NormalizationLayer::fuse_relu_in_training), one pass less each way; its node is skipped.
  void fuse_relus_into_batch_norms();
  // Training: a batch norm whose input only it reads, written by a convolution, takes it in that
  // convolution's blocked layout (and gives its gradient so); one whose output (after the ReLU it
  // applies) only a convolution reads, as its source, writes it in that convolution's layout (and
  // takes its gradient so): NormalizationLayer::take_layouts_in_training,
  // ConvolutionLayer::write_blocked_in_training and read_blocked_in_training. A concat that alone
  // a convolution reads, as its source, writes it so (ChannelLayer::write_blocked_in_training).
  // Two reorders less each way for each link (a copy and a reorder for a concat's); the same
  // bytes.
  void link_training_layouts();
  // Training, one sample: a concat whose inputs are all in its blocks (link_training_layouts) is
  // written in place by the layers before it (each input's blocks one run of its buffer), and
  // its gradient is viewed the same way. Sets in_place_, concat_in_place_ and output_slot_.
  void plan_training_concats_in_place();
  // backward(): a buffer for a gradient of these dims, its values unwritten (every layer's
  // backward writes its diff_src whole): the storage of an earlier gradient where one is spare,
  // so that training steps neither allocate nor zero their gradients again.
  Tensor diff_buffer(const Dims& dims);
  // Folds or fuses `node` into the convolution that writes its input; false if it cannot.
  bool fuse_into(ConvolutionLayer& conv, Node& conv_node, const Node& node);
  // Whether `blob` is read by exactly one layer (fold_and_fuse's layers not yet taken in) and is
  // no net output: what a layer may take in the reader of.
  bool read_by_one_layer_only(const std::string& blob) const;
  // Fuses the activation `node` into the instance or group norm that writes its input.
  bool fuse_into(NormalizationLayer& norm, Node& norm_node, const Node& node);
  std::vector<std::string> inputs_;
  std::vector<Node> nodes_;
  std::vector<std::string> outputs_;
  NetOptions options_;
  std::int64_t parameter_count_ = 0;
  bool weights_loaded_ = false;
  bool prepared_ = false;
  bool rewritten_ = false;  // load_weights folded or fused a layer
  bool training_ = false;
  std::vector<std::string> frozen_prefixes_;
  // Training: copies of the last forward's inputs, and where each blob's values are.
  std::map<std::string, Tensor> input_copies_;
  std::map<std::string, const Tensor*> blobs_;
  std::map<std::string, Dims> blob_dims_;
  std::vector<std::size_t> output_slot_;  // per node
  // Inference: per node, the slots freed after it runs (release_bytes or more, blob dead).
  std::vector<std::vector<std::size_t>> release_after_;
  std::vector<Tensor> arena_;
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  struct InPlace {
    std::size_t concat = kNone;  // the node of the concat it writes into
    std::int64_t offset = 0;     // where its values start in the concat's
    bool first = false;          // the first of the concat's writers to run
  };
  std::vector<InPlace> in_place_;      // per node
  std::vector<bool> concat_in_place_;  // per node: a concat whose inputs are written in place
  // Per in-place concat: the convolutions that wrote their own blob blocked instead, and where
  // each one's values go in the concat's buffer (link_blocked_convolutions).
  struct ConcatCopy {
    std::size_t writer = kNone;
    std::int64_t offset = 0;
  };
  std::vector<std::vector<ConcatCopy>> concat_copies_;
  std::vector<bool> relu_in_batch_norm_;  // per node: a ReLU its batch norm applies (training)
  std::vector<Tensor> spare_diffs_;       // backward(): gradients done with, for diff_buffer
  std::vector<Tensor> held_diffs_;        // backward(): in-place concats' gradients, viewed
  std::vector<Tensor> views_;             // per node writing in place: its part of the buffer
  std::int64_t planned_bytes_ = 0;
  std::size_t blocked_links_ = 0;
  std::size_t training_layout_links_ = 0;
  std::int64_t peak_bytes_ = 0;
};

}  // namespace cajal::engine
