#include "engine/layers/channel.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/layer_type.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

struct ChannelCase {
  std::string name;
  LayerType type;
  std::vector<Dims> inputs;
};

void PrintTo(const ChannelCase& c, std::ostream* os) {
  *os << c.name;
}

class ChannelGrid : public ::testing::TestWithParam<ChannelCase> {};

TEST_P(ChannelGrid, MatchesReference) {
  const auto& c = GetParam();
  const auto out = testing::run_both(c.type, nlohmann::json::object(), c.inputs);
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ChannelGrid,
    ::testing::Values(
        ChannelCase{"Softmax2d", LayerType::softmax, {{2, 3, 5, 7}}},
        ChannelCase{"Softmax3d", LayerType::softmax, {{1, 4, 3, 4, 5}}},
        ChannelCase{"SoftmaxOnLogits", LayerType::softmax, {{8, 10}}},
        ChannelCase{"Argmax2d", LayerType::argmax, {{2, 5, 4, 3}}},
        ChannelCase{"Argmax3d", LayerType::argmax, {{1, 3, 3, 4, 5}}},
        ChannelCase{"ConcatTwo2d", LayerType::concat, {{2, 3, 5, 4}, {2, 5, 5, 4}}},
        ChannelCase{"ConcatThree3d",
                    LayerType::concat,
                    {{1, 2, 3, 4, 5}, {1, 1, 3, 4, 5}, {1, 4, 3, 4, 5}}},
        // Blocks of 405,504 and 270,336 values a sample: copied in pieces of
        // 2^18 and a remainder.
        ChannelCase{"ConcatInPieces", LayerType::concat, {{2, 3, 64, 64, 33}, {2, 2, 64, 64, 33}}},
        ChannelCase{"AddTwo2d", LayerType::add, {{2, 3, 7, 5}, {2, 3, 7, 5}}},
        ChannelCase{
            "AddThree3d", LayerType::add, {{1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(Argmax, TakesTheFirstOfEqualMaxima) {
  const Tensor input({1, 3, 1, 2}, {1.0f, 0.0f, 5.0f, 2.0f, 5.0f, 2.0f});
  const auto dst =
      testing::run_one(Backend::onednn, LayerType::argmax, nlohmann::json::object(), {input}, {});
  EXPECT_EQ(dst.dims(), (Dims{1, 1, 1, 2}));
  EXPECT_EQ(dst.data()[0], 1.0f);
  EXPECT_EQ(dst.data()[1], 1.0f);
}

TEST(Softmax, SumsToOneOverChannels) {
  const auto out = testing::run_both(LayerType::softmax, nlohmann::json::object(), {{1, 4, 2, 2}});
  for (int i = 0; i < 4; ++i) {
    float sum = 0.0f;
    for (int c = 0; c < 4; ++c) {
      sum += out.onednn.data()[c * 4 + i];
    }
    EXPECT_NEAR(sum, 1.0f, 1e-6f);
  }
}

TEST(Concat, RejectsInputsOfOtherSpatialSize) {
  EXPECT_THROW(
      testing::run_both(LayerType::concat, nlohmann::json::object(), {{1, 2, 4, 4}, {1, 2, 4, 5}}),
      Error);
}

TEST(Add, RejectsASingleInput) {
  EXPECT_THROW(testing::run_both(LayerType::add, nlohmann::json::object(), {{1, 2, 4, 4}}), Error);
}

}  // namespace
}  // namespace cajal::engine
