// Optimisers with torch.optim's update formulas (PyTorch 1.13, single-tensor path): SGD with
// momentum, dampening, Nesterov and weight decay; Adam; AdamW; Nadam. Plus gradient clipping by
// the global L2 norm (torch.nn.utils.clip_grad_norm_). Issue 4.
//
// Moments are stored in float32 as PyTorch stores them; the scalar factors (bias corrections,
// Nadam's mu) are computed in double. Each value's update depends on that value alone; those of
// large parameters run on OpenMP's threads, and a step gives the same bytes on any thread count.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "engine/train/parameter.h"

namespace cajal::engine::train {

enum class OptimizerType { sgd, adam, adamw, nadam };

struct OptimizerConfig {
  OptimizerType type = OptimizerType::sgd;
  double learning_rate = 1e-3;
  // L2 penalty added to the gradient (SGD, Adam, Nadam) or decoupled decay (AdamW:
  // param *= 1 - lr * weight_decay). torch.optim.AdamW's default is 1e-2; here 0 for all.
  double weight_decay = 0.0;
  // SGD
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0, as in PyTorch
  // Adam, AdamW, Nadam
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum_decay = 4e-3;  // Nadam's psi
};

// Named state tensors for checkpoints: "<param>.step", "<param>.momentum_buffer" (SGD with
// momentum), "<param>.exp_avg", "<param>.exp_avg_sq" (Adam family), "<param>.mu_product" (Nadam).
using OptimizerState = std::map<std::string, Tensor>;

class Optimizer {
 public:
  // Throws cajal::Error for invalid hyper-parameters, a parameter without a gradient, a gradient
  // whose dims differ from its value's, or two parameters with the same name.
  Optimizer(OptimizerConfig config, std::vector<Parameter> params);

  // One update of every parameter from its current gradient.
  void step();
  // Sets every gradient to zero.
  void zero_grad();

  double learning_rate() const { return config_.learning_rate; }
  void set_learning_rate(double learning_rate);
  const OptimizerConfig& config() const { return config_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  // Steps taken so far (all parameters step together).
  std::int64_t step_count() const { return step_; }

  OptimizerState state() const;
  // Replaces the state: every name state() would give, with the same dims, and no other name.
  void load_state(const OptimizerState& state);

 private:
  struct Slot {
    std::vector<float> buffer;     // SGD momentum buffer, or Adam's exp_avg
    std::vector<float> buffer_sq;  // Adam's exp_avg_sq
    float mu_product = 1.0f;       // Nadam, float32 as in PyTorch
  };
  std::vector<std::string> state_names() const;
  void step_sgd(const Parameter& param, Slot& slot);
  void step_adam(const Parameter& param, Slot& slot);
  void step_nadam(const Parameter& param, Slot& slot);

  OptimizerConfig config_;
  std::vector<Parameter> params_;
  std::vector<Slot> slots_;
  std::int64_t step_ = 0;
};

// torch.nn.utils.clip_grad_norm_(params, max_norm): the L2 norm of all gradients together; if it
// exceeds max_norm, every gradient is multiplied by max_norm / (norm + 1e-6). Returns the norm
// before clipping. Throws cajal::Error if max_norm <= 0 or the norm is not finite.
double clip_grad_norm(std::span<const Parameter> params, double max_norm);

}  // namespace cajal::engine::train
