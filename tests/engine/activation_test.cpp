#include "engine/layers/eltwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "engine/layer_type.h"
#include "engine/layers/common.h"
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

// The hand tanh against tanh in double: every float from 1e-6 to 20 a few hundred apart, both
// signs, the values around its switches (0.0004, the clamp at 7.905), zeros, denormals, infinities
// and NaN; an odd count, so the last values take the scalar path.
TEST(TanhByHand, WithinAFewUnitsInTheLastPlaceAndNeverAboveOne) {
  std::vector<float> x{0.0f,
                       -0.0f,
                       1e-40f,
                       -1e-40f,
                       0.00039999f,
                       0.0004f,
                       0.0004001f,
                       7.9053f,
                       7.9054f,
                       9.0f,
                       50.0f,
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (float v = 1e-6f; v < 20.0f; v = std::nextafter(v, 30.0f) + v * 3e-5f) {
    x.push_back(v);
    x.push_back(-v);
  }
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  ASSERT_NE(x.size() % 8, 0u) << "the scalar tail is exercised";
  std::vector<float> y(x.size());
  detail::tanh_by_hand(x.data(), y.data(), static_cast<std::int64_t>(x.size()), 2);
  double worst_ulps = 0;
  double worst_error = 0;
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(x[i]));
    const auto rounded = static_cast<float>(exact);
    const double ulp = std::nextafter(std::fabs(rounded), 2.0f) - std::fabs(rounded);
    const double error = std::fabs(y[i] - exact);
    worst_ulps = std::max(worst_ulps, error / ulp);
    worst_error = std::max(worst_error, error);
    ASSERT_LE(std::fabs(y[i]), 1.0f) << "tanh(" << x[i] << ")";
    ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << "tanh(" << x[i] << ")";
  }
  EXPECT_LE(worst_ulps, 8.0);
  EXPECT_LE(worst_error, 4e-7);
  EXPECT_TRUE(std::isnan(y.back()));
}

// The bytes of the rational approximation in plain float multiplies and adds (a build without
// fused multiply-adds of the formula alone), which every CPU's clone must give: 16 values through
// the vector loop and one through the scalar tail, then each alone. A clone that fused a multiply
// and its add (AVX-512F has them) rounds some of these differently.
TEST(TanhByHand, GivesThePlainFloatBytesOnEveryCpu) {
  const std::vector<std::pair<float, std::uint32_t>> expected{
      {-0x1.2p+3f, 0xbf800000u},       {-0x1.d9999ap+1f, 0xbf7faff0u},
      {-0x1.4p+0f, 0xbf59291fu},       {-0x1.333334p-2f, 0xbe9526edu},
      {-0x1.3a92a4p-12f, 0xb99d4952u}, {0x0p+0f, 0x00000000u},
      {0x1.47ae14p-7f, 0x3c23d5a3u},   {0x1p-1f, 0x3eec9a9fu},
      {0x1.8a3d7p-1f, 0x3f259d2cu},    {0x1p+0f, 0x3f42f7d6u},
      {0x1.19999ap+1f, 0x3f79ca4fu},   {0x1.39999ap+2f, 0x3f7ff8bdu},
      {0x1.f9999ap+2f, 0x3f7ffffcu},   {0x1.8p+3f, 0x3f800000u},
      {0x1.f9adp-4f, 0x3dfb8fa5u},     {-0x1.f9adc8p-1f, 0xbf41a0d3u},
      {0x1.a66666p+1f, 0x3f7f4defu},
  };
  std::vector<float> x;
  for (const auto& [value, bits] : expected) {
    x.push_back(value);
  }
  std::vector<float> y(x.size());
  detail::tanh_values(x.data(), y.data(), std::ssize(x));
  for (std::size_t i = 0; i < x.size(); ++i) {
    float alone = 0.0f;
    detail::tanh_values(&x[i], &alone, 1);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &y[i], sizeof bits);
    EXPECT_EQ(bits, expected[i].second) << "tanh(" << x[i] << ") in a vector";
    std::memcpy(&bits, &alone, sizeof bits);
    EXPECT_EQ(bits, expected[i].second) << "tanh(" << x[i] << ") alone";
  }
}

TEST(TanhByHand, InPlaceAndAnyThreadCountGiveTheSameBytes) {
  std::vector<float> x(100003);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(static_cast<double>(i % 997) / 40.0 - 12.0);
  }
  std::vector<float> one(x.size());
  detail::tanh_by_hand(x.data(), one.data(), static_cast<std::int64_t>(x.size()), 1);
  std::vector<float> two = x;
  detail::tanh_by_hand(two.data(), two.data(), static_cast<std::int64_t>(two.size()), 2);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace cajal::engine
