#include "engine/layers/normalization.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "engine/layer_type.h"
#include "engine/layers/common.h"
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

// A batch norm in training on the layouts of the convolutions around it
// (take_layouts_in_training): blocked input, blocked output, both, blocks of 8 in and channels
// last out; with and without its ReLU; by the AVX-512 intrinsics and by the portable vectors. Its
// output, its input's gradient, its weight gradients and its running statistics are the bytes of
// the same layer on PyTorch's layout. 150 positions a sample: the sums' lanes end in 4 positions
// and a tail of 2. It refuses blocks that are not multiples of 8 or do not divide the channels,
// and layers that do not train a batch norm by hand.
TEST(BatchNorm, TrainsOnBlockedLayoutsWithThePlainLayoutsBytes) {
  const Context ctx(2);
  const Dims dims{2, 32, 5, 6, 5};
  const Tensor input = testing::random_tensor(dims, 7, -2.0f, 3.0f);
  const Tensor diff = testing::random_tensor(dims, 8);
  const auto make = [&](LayerType type, bool training, bool relu) {
    auto layer = create_layer(type, "bn");
    layer->load_params({{"num_features", 32}});
    layer->load_weights(testing::random_weights(*layer, 3));
    layer->set_training(training);
    layer->prepare(ctx, {dims});
    dynamic_cast<NormalizationLayer&>(*layer).fuse_relu_in_training(relu);
    return layer;
  };
  const auto same_bytes = [](const Tensor& a, const Tensor& b) {
    return a.dims() == b.dims() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
  };
  const auto to = [](const Tensor& t, std::int64_t block) {
    return block > 1 ? testing::reblock(t, block, false) : t;
  };
  const auto from = [](const Tensor& t, std::int64_t block) {
    return block > 1 ? testing::reblock(t, block, true) : t;
  };
  for (const bool intrinsics : {true, false}) {
    detail::set_avx2_fma_kernels(intrinsics);
    for (const bool relu : {false, true}) {
      auto plain = make(LayerType::batch_norm, true, relu);
      Tensor y(dims);
      plain->forward({&input}, y);
      Tensor dx(dims);
      plain->backward({&input}, y, diff, {&dx});
      for (const auto& [in, out] :
           {std::pair<std::int64_t, std::int64_t>{16, 1}, {1, 16}, {16, 16}, {8, 32}}) {
        auto layer = make(LayerType::batch_norm, true, relu);
        ASSERT_TRUE(dynamic_cast<NormalizationLayer&>(*layer).take_layouts_in_training(in, out));
        const Tensor x = to(input, in);
        Tensor y_blocked(dims, NAN);
        layer->forward({&x}, y_blocked);
        const Tensor dy = to(diff, out);
        Tensor dx_blocked(dims, NAN);
        layer->backward({&x}, y_blocked, dy, {&dx_blocked});
        const std::string where = "in " + std::to_string(in) + " out " + std::to_string(out) +
                                  (relu ? " relu" : "") + (intrinsics ? "" : " portable");
        EXPECT_TRUE(same_bytes(from(y_blocked, out), y)) << where;
        EXPECT_TRUE(same_bytes(from(dx_blocked, in), dx)) << where;
        for (const std::string role : {"weight", "bias"}) {
          EXPECT_TRUE(same_bytes(layer->grad(role), plain->grad(role))) << where << " " << role;
        }
        for (const std::string role : {"running_mean", "running_var"}) {
          EXPECT_TRUE(same_bytes(layer->weight(role), plain->weight(role))) << where << " " << role;
        }
      }
    }
  }
  detail::set_avx2_fma_kernels(true);
  auto layer = make(LayerType::batch_norm, true, false);
  auto& norm = dynamic_cast<NormalizationLayer&>(*layer);
  EXPECT_FALSE(norm.take_layouts_in_training(12, 1));
  EXPECT_FALSE(norm.take_layouts_in_training(1, 24));
  EXPECT_FALSE(norm.take_layouts_in_training(0, 16));
  EXPECT_FALSE(dynamic_cast<NormalizationLayer&>(*make(LayerType::batch_norm, false, false))
                   .take_layouts_in_training(16, 16));
  EXPECT_FALSE(dynamic_cast<NormalizationLayer&>(*make(LayerType::instance_norm, true, false))
                   .take_layouts_in_training(16, 16));
}

// An instance norm with its (per-channel) PReLU taken in, prepared, takes a layout of blocks of
// 8 or 16 channels, or channels last, when told to: its output is the plain layout's values in
// that layout, over several of its chunks (2D and 3D, batch 1 and 2). It refuses a block that is
// not a multiple of 8 or does not divide the channels, a second one, and layers that run
// otherwise (no activation taken in, a batch norm, a group norm of several channels per group,
// not yet prepared).
TEST(InstanceNorm, TakesBlockedLayoutsAsTheyAre) {
  const Context ctx(2);
  const auto make = [&](LayerType type, const nlohmann::json& params, bool activation,
                        const Dims& dims) {
    auto layer = create_layer(type, "n");
    layer->load_params(params);
    layer->load_weights(testing::random_weights(*layer, 3));
    auto& norm = dynamic_cast<NormalizationLayer&>(*layer);
    if (activation) {
      const Tensor slopes = testing::random_tensor({dims[1]}, 4, -0.5f, 0.5f);
      EXPECT_TRUE(norm.fuse_activation({slopes.data(), slopes.data() + slopes.size()}));
    }
    EXPECT_FALSE(norm.take_blocked(8));  // before prepare
    layer->prepare(ctx, {dims});
    return layer;
  };
  const nlohmann::json affine{{"num_features", 48}, {"affine", true}};
  for (const Dims& dims : {Dims{2, 48, 7, 9, 11}, Dims{1, 48, 50, 45}}) {
    const Tensor input = testing::random_tensor(dims, 5, -3.0f, 2.0f);
    auto plain = make(LayerType::instance_norm, affine, true, dims);
    Tensor expected(dims);
    plain->forward({&input}, expected);
    for (const std::int64_t block : {8, 16, 48}) {
      auto layer = make(LayerType::instance_norm, affine, true, dims);
      auto& norm = dynamic_cast<NormalizationLayer&>(*layer);
      ASSERT_TRUE(norm.take_blocked(block)) << block;
      EXPECT_EQ(norm.channel_block(), block);
      EXPECT_FALSE(norm.take_blocked(block));
      const Tensor blocked = testing::reblock(input, block, false);
      Tensor out(dims, NAN);
      layer->forward({&blocked}, out);
      EXPECT_LE(testing::relative_error(testing::reblock(out, block, true), expected), 1e-6)
          << to_string(dims) << " block " << block;
    }
    auto refused = make(LayerType::instance_norm, affine, true, dims);
    auto& norm = dynamic_cast<NormalizationLayer&>(*refused);
    EXPECT_FALSE(norm.take_blocked(12));
    EXPECT_FALSE(norm.take_blocked(32));
    EXPECT_FALSE(norm.take_blocked(96));
    EXPECT_EQ(norm.channel_block(), 1);
    for (auto& other :
         {make(LayerType::instance_norm, affine, false, dims),
          make(LayerType::group_norm, {{"num_groups", 6}, {"num_channels", 48}}, true, dims),
          make(LayerType::batch_norm, {{"num_features", 48}}, false, dims)}) {
      EXPECT_FALSE(dynamic_cast<NormalizationLayer&>(*other).take_blocked(16)) << other->label();
    }
  }
}

}  // namespace
}  // namespace cajal::engine
