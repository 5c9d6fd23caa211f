#include "tests/engine/backward_harness.h"

#include <algorithm>
#include <cmath>

#include "engine/context.h"
#include "engine/layer_type.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine::testing {
namespace {

std::unique_ptr<Layer> make_training_layer(Backend backend, LayerType type,
                                           const nlohmann::json& params, const WeightMap& weights) {
  auto layer = create_layer(type, "layer", backend);
  layer->load_params(params);
  layer->load_weights(weights);
  layer->set_training(true);
  return layer;
}

std::vector<Dims> dims_of(const std::vector<Tensor>& inputs) {
  std::vector<Dims> dims;
  for (const auto& input : inputs) {
    dims.push_back(input.dims());
  }
  return dims;
}

std::vector<const Tensor*> pointers(const std::vector<Tensor>& inputs) {
  std::vector<const Tensor*> src;
  for (const auto& input : inputs) {
    src.push_back(&input);
  }
  return src;
}

}  // namespace

Gradients run_backward(Backend backend, LayerType type, const nlohmann::json& params,
                       const std::vector<Tensor>& inputs, const WeightMap& weights,
                       const Tensor& diff_dst, int threads) {
  const Context ctx(threads);
  auto layer = make_training_layer(backend, type, params, weights);
  Tensor dst(layer->prepare(ctx, dims_of(inputs)), NAN);
  layer->forward(pointers(inputs), dst);
  Gradients result;
  std::vector<Tensor*> diff_src;
  for (const auto& input : inputs) {
    result.diff_src.emplace_back(input.dims(), NAN);
  }
  for (auto& tensor : result.diff_src) {
    diff_src.push_back(&tensor);
  }
  layer->backward(pointers(inputs), dst, diff_dst, diff_src);
  for (const auto& role : layer->trainable_roles()) {
    result.diff_weights[role] = layer->grad(role);
  }
  return result;
}

Gradients finite_differences(LayerType type, const nlohmann::json& params,
                             const std::vector<Tensor>& inputs, const WeightMap& weights,
                             const Tensor& diff_dst, double eps) {
  const Context ctx(1);
  auto layer = make_training_layer(Backend::reference, type, params, weights);
  auto values = inputs;
  Tensor dst(layer->prepare(ctx, dims_of(inputs)));
  const auto loss = [&] {
    layer->forward(pointers(values), dst);
    double sum = 0.0;
    for (std::int64_t i = 0; i < dst.size(); ++i) {
      sum += static_cast<double>(dst.data()[i]) * diff_dst.data()[i];
    }
    return sum;
  };
  const auto derivative = [&](float& value) {
    const float saved = value;
    value = static_cast<float>(saved + eps);
    const double up = loss();
    value = static_cast<float>(saved - eps);
    const double down = loss();
    value = saved;
    return static_cast<float>((up - down) / (2.0 * eps));
  };
  Gradients result;
  for (auto& input : values) {
    Tensor diff(input.dims());
    for (std::int64_t i = 0; i < input.size(); ++i) {
      diff.data()[i] = derivative(input.data()[i]);
    }
    result.diff_src.push_back(std::move(diff));
  }
  for (const auto& role : layer->trainable_roles()) {
    auto& weight = layer->mutable_weight(role);
    Tensor diff(weight.dims());
    for (std::int64_t i = 0; i < weight.size(); ++i) {
      diff.data()[i] = derivative(weight.data()[i]);
    }
    result.diff_weights[role] = std::move(diff);
  }
  return result;
}

double worst_relative_error(const Gradients& got, const Gradients& expected, std::string& worst) {
  double error = 0.0;
  const auto check = [&](const Tensor& g, const Tensor& e, const std::string& name) {
    const double r = relative_error(g, e);
    if (!(r <= error)) {
      error = r;
      worst = name;
    }
  };
  for (std::size_t i = 0; i < expected.diff_src.size(); ++i) {
    check(i < got.diff_src.size() ? got.diff_src[i] : Tensor(), expected.diff_src[i],
          "diff_src[" + std::to_string(i) + "]");
  }
  for (const auto& [role, tensor] : expected.diff_weights) {
    const auto found = got.diff_weights.find(role);
    check(found != got.diff_weights.end() ? found->second : Tensor(), tensor, "diff_" + role);
  }
  return error;
}

BackwardCase make_backward_case(LayerType type, const nlohmann::json& params,
                                const std::vector<Dims>& input_dims, std::uint32_t seed) {
  auto probe = create_layer(type, "layer", Backend::reference);
  probe->load_params(params);
  BackwardCase c;
  c.weights = random_weights(*probe, seed + 100);
  for (const auto& dims : input_dims) {
    c.inputs.push_back(random_tensor(dims, seed++));
  }
  probe->load_weights(c.weights);
  const Context ctx(1);
  c.diff_dst = random_tensor(probe->prepare(ctx, input_dims), seed + 200);
  return c;
}

}  // namespace cajal::engine::testing
