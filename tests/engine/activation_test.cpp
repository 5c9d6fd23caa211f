#include "engine/layers/eltwise.h"

#include <gtest/gtest.h>

#include "engine/layer_type.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

struct ActivationCase {
  std::string name;
  LayerType type;
  Dims input;
  nlohmann::json params;
};

void PrintTo(const ActivationCase& c, std::ostream* os) {
  *os << c.name;
}

class ActivationGrid : public ::testing::TestWithParam<ActivationCase> {};

TEST_P(ActivationGrid, MatchesReference) {
  const auto& c = GetParam();
  const auto out = testing::run_both(c.type, c.params, {c.input});
  EXPECT_LE(out.relative_error, 1e-4);
}

const nlohmann::json kNone = nlohmann::json::object();

INSTANTIATE_TEST_SUITE_P(
    Shapes, ActivationGrid,
    ::testing::Values(
        ActivationCase{"Relu2d", LayerType::relu, {2, 3, 7, 5}, kNone},
        ActivationCase{"Relu3d", LayerType::relu, {1, 2, 3, 5, 7}, kNone},
        ActivationCase{"LeakyReluDefaultSlope", LayerType::leaky_relu, {1, 3, 9, 9}, kNone},
        ActivationCase{"LeakyReluSlope0p2_3d",
                       LayerType::leaky_relu,
                       {1, 2, 3, 4, 5},
                       {{"negative_slope", 0.2}}},
        ActivationCase{"Elu", LayerType::elu, {2, 4, 5, 3}, {{"alpha", 0.7}}},
        ActivationCase{"Sigmoid3d", LayerType::sigmoid, {1, 3, 4, 5, 6}, kNone},
        ActivationCase{"TanhOnFeatures", LayerType::tanh, {4, 10}, kNone},
        ActivationCase{"Gelu", LayerType::gelu, {1, 5, 7, 7}, kNone},
        ActivationCase{"PreluShared2d", LayerType::prelu, {2, 3, 5, 4}, kNone},
        ActivationCase{
            "PreluPerChannel3d", LayerType::prelu, {2, 4, 3, 5, 2}, {{"num_parameters", 4}}},
        ActivationCase{"PreluPerFeature", LayerType::prelu, {3, 6}, {{"num_parameters", 6}}},
        // Planes of 18,200 values: more than one of the kernel's blocks of 16,384 per channel.
        ActivationCase{"PreluPlanesOfSeveralBlocks",
                       LayerType::prelu,
                       {2, 3, 2, 130, 70},
                       {{"num_parameters", 3}}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(LeakyRelu, ScalesNegativeValuesBySlope) {
  const Tensor input({1, 1, 1, 2}, {-2.0f, 3.0f});
  const auto dst = testing::run_one(Backend::onednn, LayerType::leaky_relu,
                                    {{"negative_slope", 0.25}}, {input}, {});
  EXPECT_FLOAT_EQ(dst.data()[0], -0.5f);
  EXPECT_FLOAT_EQ(dst.data()[1], 3.0f);
}

}  // namespace
}  // namespace cajal::engine
