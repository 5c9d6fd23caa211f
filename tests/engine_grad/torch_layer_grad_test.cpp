// Each layer's forward and backward against PyTorch's autograd on the same weights, input and
// diff_dst: the fixtures of tools/export_torch_layer_grads.py.
#include "tests/engine_grad/grad_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/layers/reshape.h"
#include "models/safetensors.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine::testing {
namespace {

const std::filesystem::path kFixtures = CAJAL_GRAD_FIXTURES;

struct TorchCase {
  std::string name;
  Backend backend;
};

std::string test_name(const TorchCase& c) {
  return c.name + (c.backend == Backend::reference ? "_NaiveTwin" : "_OneDnn");
}

void PrintTo(const TorchCase& c, std::ostream* os) {
  *os << test_name(c);
}

// Every tensor the layer gave that PyTorch wrote, by its fixture name, against PyTorch's.
std::map<std::string, double> compare_with_torch(const TorchCase& c) {
  std::ifstream file(kFixtures / (c.name + ".json"));
  const auto spec = nlohmann::json::parse(file);
  const auto tensors = models::read_safetensors(kFixtures / (c.name + ".safetensors"));
  WeightMap weights;
  std::vector<Tensor> inputs;
  for (const auto& [key, tensor] : tensors) {
    if (key.starts_with("weight.")) {
      weights["layer." + key.substr(7)] = tensor;
    }
  }
  for (int i = 0; tensors.contains("input" + std::to_string(i)); ++i) {
    inputs.push_back(tensors.at("input" + std::to_string(i)));
  }
  const Context ctx(2);
  auto layer =
      create_layer(parse_layer_type(spec.at("type").get<std::string>()), "layer", c.backend);
  layer->load_params(spec.at("params"));
  layer->load_weights(weights);
  layer->set_training(spec.at("training").get<bool>());
  std::vector<Dims> dims;
  std::vector<const Tensor*> src;
  std::vector<Tensor> diff_src;
  std::vector<Tensor*> diff_src_pointers;
  for (const auto& input : inputs) {
    dims.push_back(input.dims());
    src.push_back(&input);
    diff_src.emplace_back(input.dims(), NAN);
  }
  for (auto& d : diff_src) {
    diff_src_pointers.push_back(&d);
  }
  Tensor dst(layer->prepare(ctx, dims), NAN);
  if (spec.contains("dropout_seed")) {
    dynamic_cast<ReshapeLayer&>(*layer).set_seed(spec.at("dropout_seed").get<std::uint64_t>());
  }
  layer->forward(src, dst);
  layer->backward(src, dst, tensors.at("diff_dst"), diff_src_pointers);

  std::map<std::string, double> errors;
  errors["dst"] = relative_error(dst, tensors.at("dst"));
  for (std::size_t i = 0; i < diff_src.size(); ++i) {
    const auto key = "diff_src" + std::to_string(i);
    errors[key] = relative_error(diff_src[i], tensors.at(key));
  }
  for (const auto& role : layer->trainable_roles()) {
    const auto key = "grad." + role;
    errors[key] =
        tensors.contains(key) ? relative_error(layer->grad(role), tensors.at(key)) : INFINITY;
  }
  for (const auto& [key, expected] : tensors) {
    if (key.starts_with("after.")) {
      errors[key] = relative_error(layer->weight(key.substr(6)), expected);
    }
  }
  return errors;
}

class TorchLayerGrad : public ::testing::TestWithParam<TorchCase> {};

TEST_P(TorchLayerGrad, MatchesAutograd) {
  EXPECT_TRUE(all_within(compare_with_torch(GetParam()), 1e-4));
}

std::vector<TorchCase> all_cases() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    if (entry.path().extension() == ".json") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<TorchCase> cases;
  for (const auto& name : names) {
    cases.push_back({name, Backend::onednn});
    cases.push_back({name, Backend::reference});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchLayerGrad, ::testing::ValuesIn(all_cases()),
                         [](const auto& param_info) { return test_name(param_info.param); });

TEST(TorchLayerGradFixtures, CoverEveryLayerWithABackward) {
  std::set<std::string> types;
  for (const auto& c : all_cases()) {
    std::ifstream file(kFixtures / (c.name + ".json"));
    types.insert(nlohmann::json::parse(file).at("type").get<std::string>());
  }
  for (const char* type :
       {"relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "prelu", "softmax", "batch_norm",
        "instance_norm", "group_norm", "add", "concat", "flatten", "dropout", "upsample"}) {
    EXPECT_TRUE(types.contains(type)) << type;
  }
}

}  // namespace
}  // namespace cajal::engine::testing
