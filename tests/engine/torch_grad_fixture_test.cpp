// Whole networks in training against PyTorch autograd: the fixtures of
// tools/export_torch_grad_fixtures.py (LeNet-5, a 2D and a 3D U-Net, two layer zoos).
#include "models/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "engine/context.h"
#include "models/safetensors.h"
#include "tests/engine/layer_harness.h"

namespace cajal::models {
namespace {

struct GradFixtureCase {
  std::string name;
  engine::Backend backend;
};

std::string test_name(const GradFixtureCase& c) {
  return c.name + (c.backend == engine::Backend::reference ? "_NaiveTwins" : "_OneDnn");
}

void PrintTo(const GradFixtureCase& c, std::ostream* os) {
  *os << test_name(c);
}

double max_abs(const engine::Tensor& tensor) {
  double m = 0.0;
  for (const auto v : tensor.values()) {
    m = std::max(m, static_cast<double>(std::abs(v)));
  }
  return m;
}

class TorchGradFixture : public ::testing::TestWithParam<GradFixtureCase> {};

TEST_P(TorchGradFixture, MatchesPyTorchAutograd) {
  const auto dir = std::filesystem::path(CAJAL_ENGINE_FIXTURES) / GetParam().name;
  auto model = Model::load(dir, GetParam().backend, engine::NetOptions::for_training());
  auto& net = model.net();
  const auto io = read_safetensors(dir / "io.safetensors");
  const auto expected = read_safetensors(dir / "grads.safetensors");
  const auto& input_name = model.spec().inputs.at(0);
  const auto& output_name = model.spec().outputs.at(0);
  const auto& input = io.at(input_name);
  const engine::Context ctx(2);
  net.set_training(true);
  net.prepare(ctx, {{input_name, input.dims()}});
  std::map<std::string, engine::Tensor> diff_input;
  try {
    const auto outputs = net.forward({{input_name, input}});
    EXPECT_LE(engine::testing::relative_error(outputs.at(output_name), io.at(output_name)), 1e-4)
        << "training forward";
    diff_input = net.backward({{output_name, io.at("diff." + output_name)}}, {input_name});
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find("backward") != std::string::npos && what.find("none") != std::string::npos) {
      GTEST_SKIP() << "a layer backward is missing: " << what;
    }
    throw;
  }
  EXPECT_LE(engine::testing::relative_error(diff_input.at(input_name), expected.at(input_name)),
            1e-4)
      << "gradient of the input";
  const auto params = net.parameters();
  EXPECT_EQ(params.size() + 1, expected.size());
  // A convolution's bias right before a normalisation has a gradient of exactly zero (the
  // normalisation removes any per-channel constant); float32 leaves rounding noise there, which
  // has no relative error. Such a gradient (PyTorch's, in float64, below 1e-7 of the largest)
  // is held to 1e-4 of the largest gradient of the network instead.
  double largest = 0.0;
  for (const auto& [name, tensor] : expected) {
    largest = std::max(largest, max_abs(tensor));
  }
  for (const auto& p : params) {
    ASSERT_TRUE(expected.contains(p.name)) << p.name;
    const auto& want = expected.at(p.name);
    if (max_abs(want) < 1e-7 * largest) {
      EXPECT_LE(max_abs(*p.grad), 1e-4 * largest) << p.name << " (zero in exact arithmetic)";
      continue;
    }
    EXPECT_LE(engine::testing::relative_error(*p.grad, want), 1e-4) << p.name;
  }
  // Batch norm's running statistics after the forward, as PyTorch updated them.
  const auto weights = net.weights();
  for (const auto& [name, tensor] : io) {
    if (name.starts_with("after.")) {
      EXPECT_LE(engine::testing::relative_error(weights.at(name.substr(6)), tensor), 1e-5) << name;
    }
  }
}

// The same seed, input and thread count give the same gradients, byte for byte, through batch
// norm, max pooling, transposed convolution and concat.
TEST(TorchGradFixture, GivesTheSameBytesOnASecondRun) {
  const auto dir = std::filesystem::path(CAJAL_ENGINE_FIXTURES) / "grad_unet2d";
  const auto io = read_safetensors(dir / "io.safetensors");
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    auto model = Model::load(dir, engine::Backend::onednn, engine::NetOptions::for_training());
    auto& net = model.net();
    const auto& input_name = model.spec().inputs.at(0);
    const auto& output_name = model.spec().outputs.at(0);
    const engine::Context ctx(2);
    net.set_training(true);
    net.prepare(ctx, {{input_name, io.at(input_name).dims()}});
    std::vector<float> bytes;
    try {
      net.forward({{input_name, io.at(input_name)}});
      const auto diff = net.backward({{output_name, io.at("diff." + output_name)}}, {input_name});
      bytes.assign(diff.at(input_name).values().begin(), diff.at(input_name).values().end());
    } catch (const Error& e) {
      GTEST_SKIP() << "a layer backward is missing: " << e.what();
    }
    for (const auto& p : net.parameters()) {
      bytes.insert(bytes.end(), p.grad->values().begin(), p.grad->values().end());
    }
    runs.push_back(std::move(bytes));
  }
  ASSERT_EQ(runs[0].size(), runs[1].size());
  EXPECT_EQ(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)), 0);
}

std::vector<GradFixtureCase> all_fixtures() {
  std::vector<GradFixtureCase> cases;
  for (const char* name :
       {"grad_lenet5", "grad_unet2d", "grad_unet3d", "grad_conv_pool_zoo", "grad_layer_zoo"}) {
    cases.push_back({name, engine::Backend::onednn});
    cases.push_back({name, engine::Backend::reference});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Models, TorchGradFixture, ::testing::ValuesIn(all_fixtures()),
                         [](const auto& param_info) { return test_name(param_info.param); });

}  // namespace
}  // namespace cajal::models
