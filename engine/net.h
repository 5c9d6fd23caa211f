// Net: a graph of layers over named blobs, run in the order given. Activation buffers are reused
// by liveness: a blob's buffer returns to the pool after the last layer that reads it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/layer.h"
#include "engine/tensor.h"

namespace cajal::engine {

class ConvolutionLayer;

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
  // Builds every layer for these input dims and plans the activation buffers.
  void prepare(const Context& ctx, const std::map<std::string, Dims>& input_dims);
  // Inputs must have the dims given to prepare(). Returns the output blobs.
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

 private:
  void fold_and_fuse();
  // Folds or fuses `node` into the convolution that writes its input; false if it cannot.
  bool fuse_into(ConvolutionLayer& conv, Node& conv_node, const Node& node);
  std::vector<std::string> inputs_;
  std::vector<Node> nodes_;
  std::vector<std::string> outputs_;
  NetOptions options_;
  std::int64_t parameter_count_ = 0;
  bool weights_loaded_ = false;
  bool prepared_ = false;
  std::map<std::string, Dims> blob_dims_;
  std::vector<std::size_t> output_slot_;  // per node
  std::vector<Tensor> arena_;
};

}  // namespace cajal::engine
