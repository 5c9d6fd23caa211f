#include <gtest/gtest.h>

#include "models/model.h"
#include "pipeline/inference.h"
#include "test_support.h"

namespace cajal::pipeline {
namespace {

models::LayerSpec layer(const std::string& name, engine::LayerType type, const std::string& input,
                        nlohmann::json params) {
  return {name, type, {input}, name, std::move(params)};
}

TEST(Locality, TinyModelIsLocalWithStride2AndItsReceptiveRadius) {
  const auto model = models::Model::load(testing::tiny_model_dir());
  const auto locality = analyse_locality(model.spec());
  EXPECT_TRUE(locality.local) << locality.reason;
  EXPECT_EQ(locality.total_stride, (std::array<std::int64_t, 3>{2, 2, 2}));
  // conv 3 padding 1: 1; max pool 2: +1 -> 2 (jump 2); conv 3 padding 1 at jump 2: +2 -> 4;
  // transposed conv 2 stride 2 reaches half a coarse voxel: +1 -> 5; the 1x1 head adds nothing.
  EXPECT_EQ(locality.receptive_radius, (std::array<std::int64_t, 3>{5, 5, 5}));
}

TEST(Locality, InstanceNormNetworkIsNotLocal) {
  const auto model =
      models::Model::load(std::filesystem::path(CAJAL_ENGINE_FIXTURES) / "plain_unet3d");
  const auto locality = analyse_locality(model.spec());
  EXPECT_FALSE(locality.local);
  EXPECT_NE(locality.reason.find("instance norm"), std::string::npos) << locality.reason;
}

TEST(Locality, StridedConvolutionsMultiplyTheTotalStridePerAxis) {
  models::ModelSpec spec;
  spec.inputs = {"x"};
  spec.outputs = {"b"};
  const auto conv = engine::LayerType::convolution;
  spec.layers = {
      layer("a", conv, "x", {{"kernel_size", {3, 3, 3}}, {"stride", {1, 2, 2}}, {"dilation", 1}}),
      layer("b", conv, "a", {{"kernel_size", {1, 3, 3}}, {"stride", 2}, {"dilation", {1, 2, 1}}}),
  };
  const auto locality = analyse_locality(spec);
  ASSERT_TRUE(locality.local);
  EXPECT_EQ(locality.total_stride, (std::array<std::int64_t, 3>{2, 4, 4}));
  // Padding 0: reaches of 2 (kernel 3), then D: 0; H: 2 * 2 (dilation 2) * 2 (jump); W: 2 * 2.
  EXPECT_EQ(locality.receptive_radius, (std::array<std::int64_t, 3>{2, 10, 6}));
}

}  // namespace
}  // namespace cajal::pipeline
