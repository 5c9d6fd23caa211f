#include "models/builders.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "models/model.h"
#include "models/model_spec.h"

namespace cajal::models {
namespace {

// The builder's graph as a Net with placeholder weights, prepared for `input`; returns the dims
// of the output blob and the parameter count.
struct Built {
  engine::Dims output;
  std::int64_t parameters = 0;
};

Built build_and_prepare(const nlohmann::json& graph, const engine::Dims& input) {
  nlohmann::json doc = graph;
  doc["format"] = "cajal-model";
  doc["format_version"] = kFormatVersion;
  doc["run"] = {{"input_channels", input[1]},
                {"spatial_dims", static_cast<std::int64_t>(input.size()) - 2}};
  const ModelSpec spec = parse_model_spec(doc, "test");
  auto nodes = make_nodes(spec);
  engine::WeightMap weights;
  for (const auto& node : nodes) {
    for (const auto& w : node.layer->weight_specs()) {
      weights[node.layer->name() + "." + w.role] =
          engine::Tensor(w.dims, w.role == "running_var" ? 1.0f : 0.0f);
    }
  }
  engine::Net net(spec.inputs, std::move(nodes), spec.outputs);
  net.load_weights(weights);
  engine::Context ctx(1);
  net.prepare(ctx, {{spec.inputs[0], input}});
  return {net.blob_dims(spec.outputs[0]), net.parameter_count()};
}

TEST(Builders, LeNet5HasThe1998ShapesAndParameterCount) {
  const Built built = build_and_prepare(build_lenet5({}), {4, 1, 32, 32});
  EXPECT_EQ(built.output, (engine::Dims{4, 10}));
  // C1 156 + C3 2416 + C5 48120 + F6 10164 + output 850 (LeCun et al. 1998, section II.B).
  EXPECT_EQ(built.parameters, 61706);
}

TEST(Builders, ResNet18MatchesTorchvisionParameterCount) {
  const Built built = build_and_prepare(build_resnet({}), {1, 3, 64, 64});
  EXPECT_EQ(built.output, (engine::Dims{1, 10}));
  // torchvision.models.resnet18(num_classes=10) has 11,181,642 parameters (11,689,512 for 1000
  // classes less 513 x 990 in fc); the engine also counts the batch norms'
  // running mean and variance: 2 x 4800 channels.
  EXPECT_EQ(built.parameters, 11181642 + 2 * 4800);
}

TEST(Builders, UNetKeepsTheInputSizeIn2DAnd3D) {
  UNetConfig config;
  config.out_channels = 5;
  config.features = {4, 8, 16};
  const Built built3 = build_and_prepare(build_unet(config), {1, 1, 16, 24, 32});
  EXPECT_EQ(built3.output, (engine::Dims{1, 5, 16, 24, 32}));
  config.spatial_dims = 2;
  config.norm = "instance";
  config.down = "strided_convolution";
  config.activation = "leaky_relu";
  const Built built2 = build_and_prepare(build_unet(config), {2, 1, 32, 32});
  EXPECT_EQ(built2.output, (engine::Dims{2, 5, 32, 32}));
}

TEST(Builders, UNetParameterCountMatchesHandCount) {
  UNetConfig config;
  config.spatial_dims = 2;
  config.out_channels = 3;
  config.features = {4, 8};
  config.norm = "none";
  // enc0: 1->4 (40) + 4->4 (148); enc1: 4->8 (296) + 8->8 (584); up 8->4 k2 (132);
  // dec0: 8->4 (292) + 4->4 (148); head 4->3 1x1 (15).
  EXPECT_EQ(build_and_prepare(build_unet(config), {1, 1, 8, 8}).parameters, 1655);
}

TEST(Builders, ArchitectureFromJsonRejectsUnknownBuildersAndKeys) {
  EXPECT_NO_THROW(build_architecture({{"builder", "lenet5"}}, "train.json"));
  EXPECT_EQ(build_architecture({{"builder", "unet"}, {"out_channels", 3}, {"features", {4, 8}}},
                               "train.json"),
            build_unet({.out_channels = 3, .features = {4, 8}}));
  EXPECT_THROW(build_architecture({{"builder", "vgg"}}, "train.json"), Error);
  EXPECT_THROW(build_architecture({{"builder", "lenet5"}, {"clases", 10}}, "train.json"), Error);
  EXPECT_THROW(build_architecture({{"builder", "lenet5"}, {"features", {4}}}, "train.json"), Error);
  EXPECT_THROW(build_architecture({{"builder", "unet"}, {"out_channels", 2}, {"features", {0, 4}}},
                                  "train.json"),
               Error);
  EXPECT_THROW(build_architecture({{"builder", "unet"}, {"out_channels", 2}, {"norm", "layer"}},
                                  "train.json"),
               Error);
}

}  // namespace
}  // namespace cajal::models
