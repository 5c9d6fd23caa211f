// Layer: ncnn's life cycle. load_params (named keys) -> load_weights (by name, exact shape) ->
// prepare (build primitives once, reorder weights once) -> forward (const, executes only).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/params.h"
#include "engine/tensor.h"

namespace cajal::engine {

// Named tensors in PyTorch's layout, "<layer>.<role>" -> tensor.
using WeightMap = std::map<std::string, Tensor>;

struct WeightSpec {
  std::string role;  // "weight", "bias", "running_mean", ...
  Dims dims;
};

class Layer {
 public:
  Layer(LayerType type, std::string name);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  LayerType type() const { return type_; }
  const std::string& name() const { return name_; }
  // "layer 'enc0.conv1' (convolution)", for messages.
  std::string label() const;

  void load_params(const nlohmann::json& params);
  // Takes "<name>.<role>" for every role the params call for; throws if one is missing or has
  // another shape. Returns the names it took, so a Net can reject extra tensors.
  std::vector<std::string> load_weights(const WeightMap& weights);
  // Validates the input dims, builds what forward() needs, returns the output dims.
  Dims prepare(const Context& ctx, const std::vector<Dims>& src_dims);
  // src and dst have the dims given to and returned by prepare().
  virtual void forward(const std::vector<const Tensor*>& src, Tensor& dst) const = 0;

  // The weights this layer takes, known once params are loaded.
  virtual std::vector<WeightSpec> weight_specs() const { return {}; }
  bool has_weight(const std::string& role) const { return weights_.contains(role); }
  const Tensor& weight(const std::string& role) const;
  const std::vector<Dims>& src_dims() const { return src_dims_; }
  const Dims& dst_dims() const { return dst_dims_; }
  bool prepared() const { return prepared_; }
  // Floating-point operations of one forward(), after prepare(): multiply-adds count two; layers
  // without arithmetic of their own count one per output value.
  virtual std::int64_t flops() const { return element_count(dst_dims_); }

  // Training (issue 4). Call set_training(true) before prepare(): batch norm then normalises with
  // the batch's statistics and updates its running ones, dropout drops, and forward() keeps in
  // the layer what backward() needs (so a training layer runs one forward/backward at a time).
  // Switching the mode of a prepared layer makes it unprepared: prepare() again.
  void set_training(bool training);
  bool training() const { return training_; }
  // After a training forward() with the same src and dst: writes diff_src[i] (the dims of
  // src[i]; a null entry is not wanted) and adds this call's weight gradients to grad(role).
  // The default throws: the layer has no backward pass.
  virtual void backward(const std::vector<const Tensor*>& src, const Tensor& dst,
                        const Tensor& diff_dst, const std::vector<Tensor*>& diff_src);
  // The roles an optimiser updates ("weight", "bias"); not running statistics.
  virtual std::vector<std::string> trainable_roles() const;
  // The gradient of weight(role): its dims, zero until backward() adds to it.
  Tensor& grad(const std::string& role);
  void zero_grad();
  // For optimisers: change the values in place, then call weights_changed() so that the layer
  // re-derives what prepare() built from them (reordered or folded copies).
  Tensor& mutable_weight(const std::string& role);
  virtual void weights_changed() {}

 protected:
  virtual void parse_params(ParamReader& params) = 0;
  // Checks the inputs (count, rank, channels) and returns the output dims.
  virtual Dims infer_dst_dims(const std::vector<Dims>& src) const = 0;
  // Backend work for prepare(); the reference twins need none.
  virtual void build(const Context& /*ctx*/) {}
  void set_weight(const std::string& role, Tensor tensor);
  // Throws cajal::Error "<label>: <what>: expected ..., got ...".
  [[noreturn]] void fail(const std::string& what, const std::string& expected,
                         const std::string& got) const;

 private:
  LayerType type_;
  std::string name_;
  bool params_loaded_ = false;
  bool weights_loaded_ = false;
  bool prepared_ = false;
  bool training_ = false;
  std::map<std::string, Tensor> weights_;
  std::map<std::string, Tensor> grads_;
  std::vector<Dims> src_dims_;
  Dims dst_dims_;
};

}  // namespace cajal::engine
