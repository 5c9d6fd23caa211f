#include "models/model.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/context.h"
#include "models/safetensors.h"
#include "tests/engine/layer_harness.h"

namespace cajal::models {
namespace {

struct FixtureCase {
  std::string name;
  engine::Backend backend;
};

std::string test_name(const FixtureCase& c) {
  return c.name + (c.backend == engine::Backend::reference ? "_NaiveTwins" : "_OneDnn");
}

void PrintTo(const FixtureCase& c, std::ostream* os) {
  *os << test_name(c);
}

std::filesystem::path fixture_dir(const std::string& name) {
  return std::filesystem::path(CAJAL_ENGINE_FIXTURES) / name;
}

class TorchFixture : public ::testing::TestWithParam<FixtureCase> {};

// tools/export_torch_models.py wrote the model, an input and PyTorch's output.
TEST_P(TorchFixture, MatchesPyTorchOutput) {
  const auto dir = fixture_dir(GetParam().name);
  const auto backend = GetParam().backend;
  const bool naive = backend == engine::Backend::reference;
  auto model = Model::load(dir, backend, {.fold_batch_norm = !naive, .fuse_post_ops = !naive});
  const auto io = read_safetensors(dir / "io.safetensors");
  const auto& input_name = model.spec().inputs.at(0);
  const auto& output_name = model.spec().outputs.at(0);
  const auto& input = io.at(input_name);
  const engine::Context ctx(2);
  model.net().prepare(ctx, {{input_name, input.dims()}});
  const auto outputs = model.net().forward({{input_name, input}});
  const auto& expected = io.at(output_name);
  EXPECT_EQ(outputs.at(output_name).dims(), expected.dims());
  EXPECT_LE(engine::testing::relative_error(outputs.at(output_name), expected), 1e-4);
}

std::vector<FixtureCase> all_fixtures() {
  std::vector<FixtureCase> cases;
  for (const char* name : {"lenet5", "unet2d", "plain_unet3d", "monai_unet3d", "resnet2d",
                           "resnet3d", "alexnet", "layer_zoo"}) {
    cases.push_back({name, engine::Backend::onednn});
    cases.push_back({name, engine::Backend::reference});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Models, TorchFixture, ::testing::ValuesIn(all_fixtures()),
                         [](const auto& param_info) { return test_name(param_info.param); });

}  // namespace
}  // namespace cajal::models
