#include "engine/layer.h"

#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/layer_type.h"

namespace cajal::engine {
namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(LayerType, NamesRoundTripForEveryType) {
  for (std::size_t i = 0; i < kLayerTypeCount; ++i) {
    const auto type = static_cast<LayerType>(i);
    EXPECT_EQ(parse_layer_type(layer_type_name(type)), type);
    EXPECT_NE(create_layer(type, "x", Backend::onednn), nullptr);
    EXPECT_NE(create_layer(type, "x", Backend::reference), nullptr);
  }
}

TEST(LayerType, RejectsAnUnknownName) {
  EXPECT_NE(error_of([] { parse_layer_type("conv2d"); }).find("got 'conv2d'"), std::string::npos);
}

TEST(LoadParams, RejectsAnUnknownKeyByName) {
  auto layer = create_layer(LayerType::convolution, "enc0.conv1");
  const auto message = error_of([&] {
    layer->load_params(
        {{"in_channels", 1}, {"out_channels", 2}, {"kernel_size", {3, 3}}, {"strides", 2}});
  });
  EXPECT_NE(message.find("layer 'enc0.conv1' (convolution): unknown key 'strides'"),
            std::string::npos)
      << message;
}

TEST(LoadParams, RejectsAMissingRequiredKey) {
  auto layer = create_layer(LayerType::linear, "fc");
  const auto message = error_of([&] { layer->load_params({{"in_features", 3}}); });
  EXPECT_NE(message.find("key 'out_features'"), std::string::npos) << message;
}

TEST(LoadParams, RejectsAValueOfTheWrongKind) {
  auto layer = create_layer(LayerType::leaky_relu, "act");
  const auto message = error_of([&] { layer->load_params({{"negative_slope", "big"}}); });
  EXPECT_NE(message.find("expected a number, got \"big\""), std::string::npos) << message;
}

TEST(LoadParams, RejectsAChannelCountPastTwoToThe30) {
  auto layer = create_layer(LayerType::linear, "fc");
  const auto message = error_of([&] {
    layer->load_params({{"in_features", 3}, {"out_features", 4294967296}});
  });
  EXPECT_NE(message.find("key 'out_features': expected an integer from 1 to 2^30"),
            std::string::npos)
      << message;
}

TEST(Context, UsesTheThreadCountItWasGiven) {
  EXPECT_EQ(Context(1).threads(), 1);
  EXPECT_EQ(Context(2).threads(), 2);
}

TEST(LoadParams, RejectsAKernelOfFourAxes) {
  auto layer = create_layer(LayerType::convolution, "c");
  EXPECT_THROW(
      layer->load_params({{"in_channels", 1}, {"out_channels", 1}, {"kernel_size", {3, 3, 3, 3}}}),
      Error);
}

TEST(LoadWeights, NamesTheTensorAndBothShapesWhenTheShapeDiffers) {
  auto layer = create_layer(LayerType::convolution, "enc0.conv1");
  layer->load_params({{"in_channels", 1}, {"out_channels", 16}, {"kernel_size", {3, 3, 3}}});
  const WeightMap weights{{"enc0.conv1.weight", Tensor({16, 1, 3, 3})},
                          {"enc0.conv1.bias", Tensor({16})}};
  EXPECT_EQ(error_of([&] { layer->load_weights(weights); }),
            "tensor 'enc0.conv1.weight': expected shape [16,1,3,3,3], got [16,1,3,3]");
}

TEST(LoadWeights, NamesAMissingTensor) {
  auto layer = create_layer(LayerType::linear, "fc");
  layer->load_params({{"in_features", 3}, {"out_features", 2}});
  const auto message = error_of([&] { layer->load_weights({{"fc.weight", Tensor({2, 3})}}); });
  EXPECT_EQ(message, "tensor 'fc.bias': expected a tensor of shape [2], got no such tensor");
}

TEST(Prepare, RejectsAnInputOfTheWrongRank) {
  auto layer = create_layer(LayerType::max_pool, "pool");
  layer->load_params({{"kernel_size", {2, 2, 2}}});
  layer->load_weights({});
  const Context ctx(1);
  EXPECT_THROW(layer->prepare(ctx, {{1, 2, 8, 8}}), Error);
}

TEST(Tensor, RejectsValuesThatDoNotFitTheDims) {
  EXPECT_THROW(Tensor({2, 3}, std::vector<float>(5)), Error);
}

}  // namespace
}  // namespace cajal::engine
