#include "engine/train/optimizer.h"

#include <cmath>
#include <set>
#include <utility>

#include "core/error.h"

namespace cajal::engine::train {
namespace {

void require(bool ok, const std::string& what, const std::string& expected, double got) {
  if (!ok)
    throw Error("optimizer " + what, expected, std::to_string(got));
}

// Parameters of this many values or more are updated on OpenMP's threads (the engine context's
// count): each value's update reads and writes only its own, so any split gives the same bytes.
constexpr std::size_t kParallelFrom = 16384;

void validate(const OptimizerConfig& c) {
  require(c.learning_rate >= 0.0, "learning rate", ">= 0", c.learning_rate);
  require(c.weight_decay >= 0.0, "weight decay", ">= 0", c.weight_decay);
  require(c.momentum >= 0.0, "momentum", ">= 0", c.momentum);
  require(!c.nesterov || (c.momentum > 0.0 && c.dampening == 0.0), "Nesterov momentum",
          "momentum > 0 and dampening 0", c.momentum);
  require(c.beta1 >= 0.0 && c.beta1 < 1.0, "beta1", "in [0, 1)", c.beta1);
  require(c.beta2 >= 0.0 && c.beta2 < 1.0, "beta2", "in [0, 1)", c.beta2);
  require(c.eps >= 0.0, "eps", ">= 0", c.eps);
  require(c.momentum_decay >= 0.0, "momentum decay", ">= 0", c.momentum_decay);
}

std::size_t count_of(const Parameter& p) {
  return static_cast<std::size_t>(p.value->size());
}

}  // namespace

Optimizer::Optimizer(OptimizerConfig config, std::vector<Parameter> params)
    : config_(config), params_(std::move(params)) {
  validate(config_);
  std::set<std::string> names;
  for (const auto& p : params_) {
    CAJAL_CHECK(p.value != nullptr) << "parameter '" << p.name << "' has no value";
    if (p.grad == nullptr)
      throw Error("parameter '" + p.name + "'", "a gradient", "none");
    if (p.grad->dims() != p.value->dims()) {
      throw Error("gradient of '" + p.name + "'", to_string(p.value->dims()),
                  to_string(p.grad->dims()));
    }
    if (!names.insert(p.name).second) {
      throw Error("optimizer parameters", "unique names", "'" + p.name + "' twice");
    }
    Slot slot;
    const bool adam_family = config_.type != OptimizerType::sgd;
    if (adam_family || config_.momentum != 0.0)
      slot.buffer.assign(count_of(p), 0.0f);
    if (adam_family)
      slot.buffer_sq.assign(count_of(p), 0.0f);
    slots_.push_back(std::move(slot));
  }
}

void Optimizer::set_learning_rate(double learning_rate) {
  require(learning_rate >= 0.0, "learning rate", ">= 0", learning_rate);
  config_.learning_rate = learning_rate;
}

void Optimizer::zero_grad() {
  for (const auto& p : params_) {
    for (auto& g : p.grad->values())
      g = 0.0f;
  }
}

void Optimizer::step() {
  ++step_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    switch (config_.type) {
      case OptimizerType::sgd:
        step_sgd(params_[i], slots_[i]);
        break;
      case OptimizerType::adam:
      case OptimizerType::adamw:
        step_adam(params_[i], slots_[i]);
        break;
      case OptimizerType::nadam:
        step_nadam(params_[i], slots_[i]);
        break;
    }
  }
}

// torch.optim.sgd._single_tensor_sgd: d = g + wd p; buf = d on the first step, else
// momentum buf + (1 - dampening) d; d = d + momentum buf (Nesterov) or buf; p -= lr d.
void Optimizer::step_sgd(const Parameter& param, Slot& slot) {
  const auto& c = config_;
  float* p = param.value->data();
  const float* g = param.grad->data();
#pragma omp parallel for schedule(static) if (count_of(param) >= kParallelFrom)
  for (std::size_t i = 0; i < count_of(param); ++i) {
    auto d = static_cast<float>(double{g[i]} + c.weight_decay * p[i]);
    if (c.momentum != 0.0) {
      float& buf = slot.buffer[i];
      buf = step_ == 1 ? d : static_cast<float>(c.momentum * buf + (1.0 - c.dampening) * double{d});
      d = c.nesterov ? static_cast<float>(double{d} + c.momentum * buf) : buf;
    }
    p[i] = static_cast<float>(double{p[i]} - c.learning_rate * d);
  }
}

// torch.optim.adam / adamw: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Adam adds wd p to g first;
// AdamW multiplies p by 1 - lr wd first.
void Optimizer::step_adam(const Parameter& param, Slot& slot) {
  const auto& c = config_;
  const bool decoupled = c.type == OptimizerType::adamw;
  const auto t = static_cast<double>(step_);
  const double step_size = c.learning_rate / (1.0 - std::pow(c.beta1, t));
  const double correction2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, t));
  float* p = param.value->data();
  const float* g = param.grad->data();
#pragma omp parallel for schedule(static) if (count_of(param) >= kParallelFrom)
  for (std::size_t i = 0; i < count_of(param); ++i) {
    double gi = g[i];
    if (decoupled) {
      p[i] = static_cast<float>(p[i] * (1.0 - c.learning_rate * c.weight_decay));
    } else {
      gi = static_cast<float>(gi + c.weight_decay * p[i]);
    }
    float& m = slot.buffer[i];
    float& v = slot.buffer_sq[i];
    m = static_cast<float>(c.beta1 * m + (1.0 - c.beta1) * gi);
    v = static_cast<float>(c.beta2 * v + (1.0 - c.beta2) * gi * gi);
    const double denom = std::sqrt(double{v}) / correction2_sqrt + c.eps;
    p[i] = static_cast<float>(p[i] - step_size * m / denom);
  }
}

// torch.optim.nadam._single_tensor_nadam: mu_t = b1 (1 - 0.5 * 0.96^(t psi));
// mu_product *= mu_t; p -= lr (1 - mu_t) / (1 - mu_product) g / denom
//                      + lr mu_{t+1} / (1 - mu_product mu_{t+1}) m / denom,
// denom = sqrt(v / (1 - b2^t)) + eps.
void Optimizer::step_nadam(const Parameter& param, Slot& slot) {
  const auto& c = config_;
  const auto t = static_cast<double>(step_);
  const double correction2 = 1.0 - std::pow(c.beta2, t);
  const double mu = c.beta1 * (1.0 - 0.5 * std::pow(0.96, t * c.momentum_decay));
  const double mu_next = c.beta1 * (1.0 - 0.5 * std::pow(0.96, (t + 1.0) * c.momentum_decay));
  slot.mu_product = static_cast<float>(slot.mu_product * mu);
  // PyTorch 1.13 computes mu_product_next from the already updated mu_product times mu again
  // (mu_product * mu * mu_next, float32); kept as is so the steps match torch.optim.NAdam.
  const auto mu_product_next =
      static_cast<float>(static_cast<float>(slot.mu_product * mu) * mu_next);
  const double grad_scale = -c.learning_rate * (1.0 - mu) / (1.0 - slot.mu_product);
  const double avg_scale = -c.learning_rate * mu_next / (1.0 - double{mu_product_next});
  float* p = param.value->data();
  const float* g = param.grad->data();
#pragma omp parallel for schedule(static) if (count_of(param) >= kParallelFrom)
  for (std::size_t i = 0; i < count_of(param); ++i) {
    const auto gi = static_cast<float>(double{g[i]} + c.weight_decay * p[i]);
    float& m = slot.buffer[i];
    float& v = slot.buffer_sq[i];
    m = static_cast<float>(c.beta1 * m + (1.0 - c.beta1) * gi);
    v = static_cast<float>(c.beta2 * v + (1.0 - c.beta2) * double{gi} * gi);
    const double denom = std::sqrt(v / correction2) + c.eps;
    const auto after_grad = static_cast<float>(p[i] + grad_scale * gi / denom);
    p[i] = static_cast<float>(after_grad + avg_scale * m / denom);
  }
}

std::vector<std::string> Optimizer::state_names() const {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& n = params_[i].name;
    names.push_back(n + ".step");
    if (config_.type == OptimizerType::sgd) {
      if (!slots_[i].buffer.empty())
        names.push_back(n + ".momentum_buffer");
      continue;
    }
    names.push_back(n + ".exp_avg");
    names.push_back(n + ".exp_avg_sq");
    if (config_.type == OptimizerType::nadam)
      names.push_back(n + ".mu_product");
  }
  return names;
}

OptimizerState Optimizer::state() const {
  OptimizerState state;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const auto& s = slots_[i];
    state.emplace(p.name + ".step", Tensor({1}, static_cast<float>(step_)));
    if (!s.buffer.empty()) {
      const auto key = config_.type == OptimizerType::sgd ? ".momentum_buffer" : ".exp_avg";
      state.emplace(p.name + key, Tensor(p.value->dims(), s.buffer));
    }
    if (!s.buffer_sq.empty()) {
      state.emplace(p.name + ".exp_avg_sq", Tensor(p.value->dims(), s.buffer_sq));
    }
    if (config_.type == OptimizerType::nadam) {
      state.emplace(p.name + ".mu_product", Tensor({1}, s.mu_product));
    }
  }
  return state;
}

void Optimizer::load_state(const OptimizerState& state) {
  const auto names = state_names();
  if (state.size() != names.size()) {
    throw Error("optimizer state", std::to_string(names.size()) + " tensors",
                std::to_string(state.size()));
  }
  const auto get = [&](const std::string& name, const Dims& dims) -> const Tensor& {
    const auto it = state.find(name);
    if (it == state.end())
      throw Error("optimizer state", "tensor '" + name + "'", "none");
    if (it->second.dims() != dims) {
      throw Error("optimizer state '" + name + "'", to_string(dims), to_string(it->second.dims()));
    }
    return it->second;
  };
  std::int64_t step = -1;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& n = params_[i].name;
    const auto saved = get(n + ".step", {1}).values()[0];
    if (!(saved >= 0.0f && saved == std::floor(saved)) ||
        (step >= 0 && double{saved} != static_cast<double>(step))) {
      throw Error("optimizer state '" + n + ".step'", "one whole step count for all parameters",
                  std::to_string(saved));
    }
    step = static_cast<std::int64_t>(saved);
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    auto& s = slots_[i];
    const auto copy = [&](const std::string& key, std::vector<float>& into) {
      const auto values = get(p.name + key, p.value->dims()).values();
      into.assign(values.begin(), values.end());
    };
    if (!s.buffer.empty()) {
      copy(config_.type == OptimizerType::sgd ? ".momentum_buffer" : ".exp_avg", s.buffer);
    }
    if (!s.buffer_sq.empty())
      copy(".exp_avg_sq", s.buffer_sq);
    if (config_.type == OptimizerType::nadam) {
      s.mu_product = get(p.name + ".mu_product", {1}).values()[0];
    }
  }
  step_ = step < 0 ? 0 : step;
}

double clip_grad_norm(std::span<const Parameter> params, double max_norm) {
  if (!(max_norm > 0.0)) {
    throw Error("gradient clipping max norm", "> 0", std::to_string(max_norm));
  }
  double total_sq = 0.0;
  for (const auto& p : params) {
    for (const float g : p.grad->values())
      total_sq += double{g} * g;
  }
  const double total = std::sqrt(total_sq);
  if (!std::isfinite(total)) {
    throw Error("gradient norm", "a finite value", std::to_string(total));
  }
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    const auto scale = static_cast<float>(coef);
    for (const auto& p : params) {
      for (auto& g : p.grad->values())
        g *= scale;
    }
  }
  return total;
}

}  // namespace cajal::engine::train
