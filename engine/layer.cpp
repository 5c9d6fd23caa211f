#include "engine/layer.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cajal::engine {

Layer::Layer(LayerType type, std::string name) : type_(type), name_(std::move(name)) {}

Layer::~Layer() = default;

std::string Layer::label() const {
  return "layer '" + name_ + "' (" + std::string(layer_type_name(type_)) + ")";
}

void Layer::fail(const std::string& what, const std::string& expected,
                 const std::string& got) const {
  throw Error(label() + ": " + what, expected, got);
}

void Layer::load_params(const nlohmann::json& params) {
  CAJAL_CHECK(!params_loaded_) << label() << ": params loaded twice";
  ParamReader reader(params, label());
  parse_params(reader);
  reader.finish();
  params_loaded_ = true;
}

std::vector<std::string> Layer::load_weights(const WeightMap& weights) {
  CAJAL_CHECK(params_loaded_) << label() << ": load_weights before load_params";
  std::vector<std::string> taken;
  for (const auto& spec : weight_specs()) {
    const std::string key = name_ + "." + spec.role;
    const auto found = weights.find(key);
    if (found == weights.end()) {
      throw Error("tensor '" + key + "'", "a tensor of shape " + to_string(spec.dims),
                  "no such tensor");
    }
    if (found->second.dims() != spec.dims) {
      throw Error("tensor '" + key + "'", "shape " + to_string(spec.dims),
                  to_string(found->second.dims()));
    }
    weights_[spec.role] = found->second;
    taken.push_back(key);
  }
  weights_loaded_ = true;
  return taken;
}

Dims Layer::prepare(const Context& ctx, const std::vector<Dims>& src_dims) {
  CAJAL_CHECK(weights_loaded_) << label() << ": prepare before load_weights";
  for (const auto& dims : src_dims) {
    for (const auto d : dims) {
      if (d < 1) {
        fail("input dims", "positive sizes", to_string(dims));
      }
    }
  }
  dst_dims_ = infer_dst_dims(src_dims);
  src_dims_ = src_dims;
  try {
    build(ctx);
  } catch (const Error&) {
    throw;
  } catch (const InternalError&) {
    throw;
  } catch (const std::exception& e) {
    // dnnl::error: oneDNN refused a configuration the checks above let through.
    throw Error(label() + ": oneDNN could not build it for inputs " + to_string(src_dims[0]) +
                ": " + e.what());
  }
  prepared_ = true;
  return dst_dims_;
}

const Tensor& Layer::weight(const std::string& role) const {
  const auto found = weights_.find(role);
  CAJAL_CHECK(found != weights_.end()) << label() << ": no weight '" << role << "'";
  return found->second;
}

void Layer::set_training(bool training) {
  if (training != training_) {
    prepared_ = false;  // what prepare() built was for the other mode
  }
  training_ = training;
}

void Layer::backward(const std::vector<const Tensor*>& /*src*/, const Tensor& /*dst*/,
                     const Tensor& /*diff_dst*/, const std::vector<Tensor*>& /*diff_src*/) {
  fail("backward", "a layer with a backward pass", "none");
}

std::vector<std::string> Layer::trainable_roles() const {
  std::vector<std::string> roles;
  for (const auto& spec : weight_specs()) {
    roles.push_back(spec.role);
  }
  return roles;
}

Tensor& Layer::grad(const std::string& role) {
  auto found = grads_.find(role);
  if (found == grads_.end()) {
    found = grads_.emplace(role, Tensor(weight(role).dims())).first;
  }
  return found->second;
}

void Layer::zero_grad() {
  for (auto& [role, tensor] : grads_) {
    std::fill(tensor.values().begin(), tensor.values().end(), 0.0f);
  }
}

Tensor& Layer::mutable_weight(const std::string& role) {
  const auto found = weights_.find(role);
  CAJAL_CHECK(found != weights_.end()) << label() << ": no weight '" << role << "'";
  return found->second;
}

void Layer::set_weight(const std::string& role, Tensor tensor) {
  weights_[role] = std::move(tensor);
}

}  // namespace cajal::engine
