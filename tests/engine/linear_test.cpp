#include "engine/layers/linear.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/layer_type.h"
#include "engine/layers/reshape.h"
#include "engine/layers/upsample.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

struct ShapeCase {
  std::string name;
  LayerType type;
  Dims input;
  nlohmann::json params;
};

void PrintTo(const ShapeCase& c, std::ostream* os) {
  *os << c.name;
}

class LinearAndResamplingGrid : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(LinearAndResamplingGrid, MatchesReference) {
  const auto& c = GetParam();
  const auto out = testing::run_both(c.type, c.params, {c.input});
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearAndResamplingGrid,
    ::testing::Values(
        ShapeCase{"Linear", LayerType::linear, {4, 7}, {{"in_features", 7}, {"out_features", 5}}},
        ShapeCase{"LinearNoBiasBatch1",
                  LayerType::linear,
                  {1, 120},
                  {{"in_features", 120}, {"out_features", 84}, {"bias", false}}},
        ShapeCase{"Flatten3d", LayerType::flatten, {2, 3, 2, 3, 4}, nlohmann::json::object()},
        ShapeCase{"Dropout", LayerType::dropout, {2, 3, 4, 5}, {{"p", 0.3}}},
        ShapeCase{"Nearest2x2d", LayerType::upsample, {1, 3, 5, 7}, {{"scale_factor", {2, 2}}}},
        ShapeCase{"Nearest3x2_2d", LayerType::upsample, {2, 2, 4, 3}, {{"scale_factor", {3, 2}}}},
        ShapeCase{
            "Nearest2x3d", LayerType::upsample, {1, 2, 3, 4, 5}, {{"scale_factor", {2, 2, 2}}}},
        ShapeCase{"Bilinear2x",
                  LayerType::upsample,
                  {1, 3, 5, 6},
                  {{"scale_factor", {2, 2}}, {"mode", "linear"}}},
        ShapeCase{"Bilinear3x",
                  LayerType::upsample,
                  {2, 2, 4, 3},
                  {{"scale_factor", {3, 3}}, {"mode", "linear"}}},
        ShapeCase{"Trilinear2xAnisotropic",
                  LayerType::upsample,
                  {1, 2, 3, 4, 5},
                  {{"scale_factor", {1, 2, 2}}, {"mode", "linear"}}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(Flatten, KeepsTheBatchAndJoinsTheRest) {
  const auto out = testing::run_both(LayerType::flatten, nlohmann::json::object(), {{2, 3, 4, 5}});
  EXPECT_EQ(out.onednn.dims(), (Dims{2, 60}));
}

TEST(Upsample, LinearAtTheBordersRepeatsTheEdgeValue) {
  const Tensor input({1, 1, 1, 2}, {0.0f, 4.0f});
  const auto dst = testing::run_one(Backend::onednn, LayerType::upsample,
                                    {{"scale_factor", {1, 2}}, {"mode", "linear"}}, {input}, {});
  // PyTorch, align_corners=False: [0, 1, 3, 4].
  EXPECT_FLOAT_EQ(dst.data()[0], 0.0f);
  EXPECT_FLOAT_EQ(dst.data()[1], 1.0f);
  EXPECT_FLOAT_EQ(dst.data()[2], 3.0f);
  EXPECT_FLOAT_EQ(dst.data()[3], 4.0f);
}

TEST(Upsample, RejectsAnUnknownMode) {
  auto layer = create_layer(LayerType::upsample, "up");
  EXPECT_THROW(layer->load_params({{"scale_factor", {2, 2}}, {"mode", "cubic"}}), Error);
}

TEST(Linear, RejectsAnImageInput) {
  EXPECT_THROW(testing::run_both(LayerType::linear, {{"in_features", 4}, {"out_features", 2}},
                                 {{1, 4, 2, 2}}),
               Error);
}

TEST(Dropout, RejectsAProbabilityOfOne) {
  auto layer = create_layer(LayerType::dropout, "d");
  EXPECT_THROW(layer->load_params({{"p", 1.0}}), Error);
}

}  // namespace
}  // namespace cajal::engine
