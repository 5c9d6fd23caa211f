#include "engine/layers/normalization.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "engine/layer_type.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

struct NormCase {
  std::string name;
  LayerType type;
  Dims input;
  nlohmann::json params;
};

void PrintTo(const NormCase& c, std::ostream* os) {
  *os << c.name;
}

class NormalizationGrid : public ::testing::TestWithParam<NormCase> {};

TEST_P(NormalizationGrid, MatchesReference) {
  const auto& c = GetParam();
  const auto out = testing::run_both(c.type, c.params, {c.input});
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, NormalizationGrid,
    ::testing::Values(
        NormCase{"BatchNorm2d", LayerType::batch_norm, {2, 3, 7, 5}, {{"num_features", 3}}},
        NormCase{"BatchNorm3d", LayerType::batch_norm, {1, 4, 3, 5, 6}, {{"num_features", 4}}},
        NormCase{"BatchNorm1dOnFeatures", LayerType::batch_norm, {5, 6}, {{"num_features", 6}}},
        NormCase{"BatchNormWithoutAffine",
                 LayerType::batch_norm,
                 {1, 2, 4, 4},
                 {{"num_features", 2}, {"affine", false}, {"eps", 1e-3}}},
        NormCase{"InstanceNorm2d", LayerType::instance_norm, {2, 3, 9, 7}, {{"num_features", 3}}},
        NormCase{"InstanceNormAffine3d",
                 LayerType::instance_norm,
                 {2, 4, 5, 6, 3},
                 {{"num_features", 4}, {"affine", true}}},
        NormCase{"GroupNorm2Groups2d",
                 LayerType::group_norm,
                 {2, 6, 5, 7},
                 {{"num_groups", 2}, {"num_channels", 6}}},
        NormCase{"GroupNorm1GroupIsLayerNorm3d",
                 LayerType::group_norm,
                 {1, 4, 3, 4, 5},
                 {{"num_groups", 1}, {"num_channels", 4}, {"eps", 1e-4}}},
        NormCase{"GroupNormNoAffine3d",
                 LayerType::group_norm,
                 {2, 8, 3, 3, 3},
                 {{"num_groups", 4}, {"num_channels", 8}, {"affine", false}}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(InstanceNorm, GivesZeroMeanUnitVariancePerChannel) {
  const auto out =
      testing::run_both(LayerType::instance_norm, {{"num_features", 2}}, {{1, 2, 16, 16}});
  for (int c = 0; c < 2; ++c) {
    double sum = 0.0;
    double squares = 0.0;
    for (int i = 0; i < 256; ++i) {
      const double v = out.onednn.data()[c * 256 + i];
      sum += v;
      squares += v * v;
    }
    EXPECT_NEAR(sum / 256, 0.0, 1e-5);
    EXPECT_NEAR(squares / 256, 1.0, 1e-3);
  }
}

TEST(BatchNorm, TakesRunningStatisticsByName) {
  auto layer = create_layer(LayerType::batch_norm, "bn");
  layer->load_params({{"num_features", 2}});
  WeightMap weights{
      {"bn.weight", Tensor({2}, 1.0f)}, {"bn.bias", Tensor({2})}, {"bn.running_mean", Tensor({2})}};
  EXPECT_THROW(layer->load_weights(weights), Error);
}

TEST(GroupNorm, RejectsGroupsThatDoNotDivideTheChannels) {
  auto layer = create_layer(LayerType::group_norm, "gn");
  EXPECT_THROW(layer->load_params({{"num_groups", 4}, {"num_channels", 6}}), Error);
}

}  // namespace
}  // namespace cajal::engine
