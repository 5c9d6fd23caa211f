#include "tests/engine/layer_harness.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/context.h"
#include "engine/layer_type.h"

namespace cajal::engine::testing {

Tensor random_tensor(const Dims& dims, std::uint32_t seed, float lo, float hi) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(lo, hi);
  Tensor tensor(dims);
  for (auto& v : tensor.values()) {
    v = uniform(generator);
  }
  return tensor;
}

double relative_error(const Tensor& got, const Tensor& expected) {
  if (got.dims() != expected.dims()) {
    return INFINITY;
  }
  double diff = 0.0;
  double scale = 0.0;
  for (std::int64_t i = 0; i < got.size(); ++i) {
    const double g = got.data()[i];
    const double e = expected.data()[i];
    diff = std::max(diff, std::isnan(g) ? INFINITY : std::abs(g - e));
    scale = std::max(scale, std::abs(e));
  }
  return diff / std::max(scale, 1e-30);
}

WeightMap random_weights(const Layer& layer, std::uint32_t seed) {
  WeightMap weights;
  for (const auto& spec : layer.weight_specs()) {
    const bool variance = spec.role.find("var") != std::string::npos;
    weights[layer.name() + "." + spec.role] =
        random_tensor(spec.dims, seed++, variance ? 0.5f : -1.0f, variance ? 1.5f : 1.0f);
  }
  return weights;
}

Tensor run_one(Backend backend, LayerType type, const nlohmann::json& params,
               const std::vector<Tensor>& inputs, const WeightMap& weights, int threads) {
  const Context ctx(threads);
  auto layer = create_layer(type, "layer", backend);
  layer->load_params(params);
  layer->load_weights(weights);
  std::vector<Dims> dims;
  std::vector<const Tensor*> src;
  for (const auto& input : inputs) {
    dims.push_back(input.dims());
    src.push_back(&input);
  }
  Tensor dst(layer->prepare(ctx, dims), NAN);
  layer->forward(src, dst);
  return dst;
}

Outputs run_both(LayerType type, const nlohmann::json& params, const std::vector<Dims>& input_dims,
                 std::uint32_t seed, int threads) {
  auto probe = create_layer(type, "layer", Backend::reference);
  probe->load_params(params);
  const auto weights = random_weights(*probe, seed + 100);
  std::vector<Tensor> inputs;
  for (const auto& dims : input_dims) {
    inputs.push_back(random_tensor(dims, seed++));
  }
  Outputs out;
  out.onednn = run_one(Backend::onednn, type, params, inputs, weights, threads);
  out.reference = run_one(Backend::reference, type, params, inputs, weights, threads);
  out.relative_error = relative_error(out.onednn, out.reference);
  return out;
}

std::vector<Node> make_nodes(const std::vector<NodeDef>& defs, Backend backend) {
  std::vector<Node> nodes;
  for (const auto& def : defs) {
    auto layer = create_layer(def.type, def.name, backend);
    layer->load_params(def.params);
    nodes.push_back({std::move(layer), def.inputs, def.output});
  }
  return nodes;
}

Tensor reblock(const Tensor& x, std::int64_t block, bool back) {
  Tensor y(x.dims());
  const std::int64_t n_count = x.dim(0);
  const std::int64_t channels = x.dim(1);
  const std::int64_t positions = x.size() / (n_count * channels);
  for (std::int64_t n = 0; n < n_count; ++n) {
    for (std::int64_t c = 0; c < channels; ++c) {
      for (std::int64_t p = 0; p < positions; ++p) {
        const std::int64_t plain = (n * channels + c) * positions + p;
        const std::int64_t blocked =
            ((n * (channels / block) + c / block) * positions + p) * block + c % block;
        (back ? y.data()[plain] : y.data()[blocked]) = x.data()[back ? blocked : plain];
      }
    }
  }
  return y;
}

WeightMap weights_for(const std::vector<NodeDef>& defs) {
  WeightMap weights;
  std::uint32_t seed = 11;
  for (const auto& def : defs) {
    auto layer = create_layer(def.type, def.name, Backend::reference);
    layer->load_params(def.params);
    weights.merge(random_weights(*layer, seed));
    seed += 10;
  }
  return weights;
}

}  // namespace cajal::engine::testing
