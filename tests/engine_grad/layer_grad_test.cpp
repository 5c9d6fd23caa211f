// Every layer's backward pass against its naive twin and finite differences, over a grid of
// shapes: odd sizes, 2D and 3D, several channel counts, batch > 1.
#include "tests/engine_grad/grad_harness.h"

#include <gtest/gtest.h>

namespace cajal::engine::testing {
namespace {

TEST_P(LayerGrad, MatchesNaiveTwin) {
  EXPECT_TRUE(all_within(compare_with_twin(GetParam()), 1e-5));
}

TEST_P(LayerGrad, NaiveTwinMatchesFiniteDifferences) {
  EXPECT_TRUE(all_within(compare_with_finite_differences(GetParam()), 1e-3));
}

std::string case_name(const ::testing::TestParamInfo<GradCase>& info) {
  return info.param.name;
}

using L = LayerType;
using nlohmann::json;

// Activations: away from the kink at 0 for the relu family.
INSTANTIATE_TEST_SUITE_P(
    Eltwise, LayerGrad,
    ::testing::Values(
        GradCase{"Relu2d", L::relu, json::object(), {{2, 3, 5, 7}}, true, 0.01f},
        GradCase{"Relu3d", L::relu, json::object(), {{2, 2, 3, 5, 3}}, true, 0.01f},
        GradCase{"ReluInference", L::relu, json::object(), {{2, 3, 5}}, false, 0.01f},
        GradCase{
            "LeakyRelu2d", L::leaky_relu, {{"negative_slope", 0.2}}, {{3, 2, 5, 3}}, true, 0.01f},
        GradCase{"LeakyReluNegativeSlope",
                 L::leaky_relu,
                 {{"negative_slope", -0.3}},
                 {{2, 3, 4, 5}},
                 true,
                 0.01f},
        GradCase{"Elu3d", L::elu, {{"alpha", 1.3}}, {{2, 3, 3, 4, 5}}, true, 0.01f},
        GradCase{"Sigmoid2d", L::sigmoid, json::object(), {{2, 5, 3, 3}}},
        GradCase{"SigmoidFeatures", L::sigmoid, json::object(), {{5, 7}}},
        GradCase{"Tanh3d", L::tanh, json::object(), {{2, 2, 3, 3, 5}}},
        GradCase{"Gelu2d", L::gelu, json::object(), {{3, 4, 5, 3}}},
        GradCase{"GeluInference", L::gelu, json::object(), {{2, 3, 7}}, false},
        GradCase{"PreluShared2d", L::prelu, json::object(), {{2, 3, 5, 5}}, true, 0.01f},
        GradCase{
            "PreluPerChannel3d", L::prelu, {{"num_parameters", 4}}, {{2, 4, 3, 5, 3}}, true, 0.01f},
        GradCase{"PreluPerFeature", L::prelu, {{"num_parameters", 6}}, {{3, 6}}, true, 0.01f}),
    case_name);

INSTANTIATE_TEST_SUITE_P(
    Normalization, LayerGrad,
    ::testing::Values(
        GradCase{"BatchNorm2d", L::batch_norm, {{"num_features", 3}}, {{2, 3, 5, 7}}},
        GradCase{"BatchNorm3d", L::batch_norm, {{"num_features", 4}}, {{2, 4, 3, 5, 3}}},
        GradCase{"BatchNorm1dFeatures", L::batch_norm, {{"num_features", 6}}, {{5, 6}}},
        GradCase{"BatchNormNoAffine",
                 L::batch_norm,
                 {{"num_features", 2}, {"affine", false}, {"momentum", 0.3}},
                 {{3, 2, 3, 5}}},
        GradCase{"BatchNormInference", L::batch_norm, {{"num_features", 3}}, {{2, 3, 5, 3}}, false},
        GradCase{"BatchNormInferenceNoAffine",
                 L::batch_norm,
                 {{"num_features", 2}, {"affine", false}},
                 {{2, 2, 3, 3, 3}},
                 false},
        GradCase{"InstanceNorm2d", L::instance_norm, {{"num_features", 3}}, {{2, 3, 5, 7}}},
        GradCase{"InstanceNormAffine3d",
                 L::instance_norm,
                 {{"num_features", 2}, {"affine", true}},
                 {{2, 2, 3, 5, 3}}},
        GradCase{"GroupNorm2Groups2d",
                 L::group_norm,
                 {{"num_groups", 2}, {"num_channels", 6}},
                 {{2, 6, 3, 5}}},
        GradCase{"GroupNorm1Group3d",
                 L::group_norm,
                 {{"num_groups", 1}, {"num_channels", 4}, {"eps", 1e-3}},
                 {{3, 4, 3, 3, 3}}},
        GradCase{"GroupNormNoAffine",
                 L::group_norm,
                 {{"num_groups", 3}, {"num_channels", 6}, {"affine", false}},
                 {{2, 6, 5, 3}}}),
    case_name);

INSTANTIATE_TEST_SUITE_P(
    Channel, LayerGrad,
    ::testing::Values(
        GradCase{"Softmax2d", L::softmax, json::object(), {{2, 4, 5, 3}}},
        GradCase{"Softmax3d", L::softmax, json::object(), {{2, 3, 3, 5, 3}}},
        GradCase{"SoftmaxFeatures", L::softmax, json::object(), {{3, 7}}},
        GradCase{"Add2Inputs2d", L::add, json::object(), {{2, 3, 5, 7}, {2, 3, 5, 7}}},
        GradCase{"Add3Inputs3d",
                 L::add,
                 json::object(),
                 {{2, 2, 3, 5, 3}, {2, 2, 3, 5, 3}, {2, 2, 3, 5, 3}}},
        GradCase{"Concat2Inputs2d", L::concat, json::object(), {{2, 3, 5, 3}, {2, 1, 5, 3}}},
        GradCase{"Concat3Inputs3d",
                 L::concat,
                 json::object(),
                 {{2, 2, 3, 3, 5}, {2, 3, 3, 3, 5}, {2, 1, 3, 3, 5}}},
        GradCase{"Flatten2d", L::flatten, json::object(), {{3, 2, 5, 3}}},
        GradCase{"Flatten3d", L::flatten, json::object(), {{2, 3, 3, 3, 5}}},
        GradCase{"Dropout2d", L::dropout, {{"p", 0.3}}, {{2, 3, 5, 7}}},
        GradCase{"Dropout3dHalf", L::dropout, json::object(), {{2, 2, 3, 5, 3}}},
        GradCase{"DropoutInference", L::dropout, {{"p", 0.4}}, {{3, 5}}, false}),
    case_name);

INSTANTIATE_TEST_SUITE_P(
    Upsample, LayerGrad,
    ::testing::Values(
        GradCase{"Nearest2d", L::upsample, {{"scale_factor", {2, 2}}}, {{2, 3, 3, 5}}},
        GradCase{
            "NearestAnisotropic3d", L::upsample, {{"scale_factor", {1, 2, 3}}}, {{2, 2, 3, 3, 5}}},
        GradCase{"Bilinear",
                 L::upsample,
                 {{"scale_factor", {2, 2}}, {"mode", "linear"}},
                 {{2, 3, 5, 3}}},
        GradCase{"BilinearFactor3",
                 L::upsample,
                 {{"scale_factor", {3, 2}}, {"mode", "linear"}},
                 {{1, 2, 3, 5}}},
        GradCase{"Trilinear",
                 L::upsample,
                 {{"scale_factor", {2, 2, 2}}, {"mode", "linear"}},
                 {{2, 2, 3, 3, 5}}}),
    case_name);

}  // namespace
}  // namespace cajal::engine::testing
