#include "engine/layers/pooling.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"
#include "engine/layer_type.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

struct PoolCase {
  std::string name;
  LayerType type;
  Dims input;
  nlohmann::json params;
};

void PrintTo(const PoolCase& c, std::ostream* os) {
  *os << c.name;
}

class PoolingGrid : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolingGrid, MatchesReference) {
  const auto& c = GetParam();
  const auto out = testing::run_both(c.type, c.params, {c.input});
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PoolingGrid,
    ::testing::Values(
        PoolCase{"Max2x2_2d", LayerType::max_pool, {2, 3, 8, 10}, {{"kernel_size", {2, 2}}}},
        PoolCase{"Max3x3Stride2Padding1OddSize2d",
                 LayerType::max_pool,
                 {1, 4, 11, 9},
                 {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}}},
        PoolCase{"Max2x2x2_3d", LayerType::max_pool, {1, 2, 6, 8, 7}, {{"kernel_size", {2, 2, 2}}}},
        PoolCase{"Max3Stride1Padding1_3d",
                 LayerType::max_pool,
                 {1, 3, 5, 6, 7},
                 {{"kernel_size", {3, 3, 3}}, {"stride", 1}, {"padding", 1}}},
        PoolCase{"Avg2x2_2d", LayerType::avg_pool, {1, 6, 10, 12}, {{"kernel_size", {2, 2}}}},
        // Rows of 8 outputs or more (AVX2, 8 at a time, the last 8 overlapping): 14 and 17.
        PoolCase{"Avg2x2LongRows2d", LayerType::avg_pool, {2, 3, 6, 28}, {{"kernel_size", {2, 2}}}},
        PoolCase{"Max2x2x2LongRowsOddWidth3d",
                 LayerType::max_pool,
                 {1, 2, 4, 6, 35},
                 {{"kernel_size", {2, 2, 2}}}},
        // Windows of 3 that tile the input with a row and two columns left over.
        PoolCase{"Avg3x3Tiles2d", LayerType::avg_pool, {1, 2, 10, 11}, {{"kernel_size", {3, 3}}}},
        PoolCase{"Max3x3Tiles2d", LayerType::max_pool, {2, 1, 10, 11}, {{"kernel_size", {3, 3}}}},
        PoolCase{"AvgPaddedIncludingPad2d",
                 LayerType::avg_pool,
                 {1, 3, 9, 7},
                 {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}}},
        PoolCase{
            "AvgPaddedExcludingPad2d",
            LayerType::avg_pool,
            {1, 3, 9, 7},
            {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}, {"count_include_pad", false}}},
        PoolCase{"AvgAnisotropic3d",
                 LayerType::avg_pool,
                 {2, 2, 5, 8, 9},
                 {{"kernel_size", {1, 2, 3}}, {"stride", {1, 2, 2}}, {"padding", {0, 1, 1}}}},
        // Windows wider than the input on each side: taps beyond both ends of a row.
        PoolCase{"Max3Padding1OnRowsOfOne3d",
                 LayerType::max_pool,
                 {1, 2, 1, 3, 1},
                 {{"kernel_size", {3, 3, 3}}, {"stride", 1}, {"padding", 1}}},
        PoolCase{"AvgExcludingPadOnRowsOfTwo2d",
                 LayerType::avg_pool,
                 {2, 3, 2, 2},
                 {{"kernel_size", {3, 4}},
                  {"stride", {1, 3}},
                  {"padding", 1},
                  {"count_include_pad", false}}},
        PoolCase{"GlobalAvg2d", LayerType::global_avg_pool, {2, 5, 7, 9}, nlohmann::json::object()},
        PoolCase{
            "GlobalAvg3d", LayerType::global_avg_pool, {1, 4, 3, 5, 6}, nlohmann::json::object()}),
    [](const auto& param_info) { return param_info.param.name; });

// Windows 2 wide go 8 outputs at a time with AVX2: the same operations in the same order as the
// portable loop, so the same bytes, NaN, infinities and signed zeros included; rows of 17 (two
// groups of 8 and an overlapping one), and rows of 5, 7 and 1 under masks.
TEST(Pooling, PairsByAvx2GiveThePortableLoopsBytes) {
  for (const auto type : {LayerType::max_pool, LayerType::avg_pool}) {
    for (const Dims& dims : {Dims{2, 3, 4, 34}, Dims{1, 2, 4, 4, 35}, Dims{1, 2, 4, 10},
                             Dims{2, 3, 6, 14}, Dims{1, 25, 4, 2}}) {
      auto input = testing::random_tensor(dims, 7, -2.0f, 2.0f);
      float* v = input.data();
      v[3] = std::numeric_limits<float>::quiet_NaN();
      v[20] = std::numeric_limits<float>::infinity();
      v[21] = -std::numeric_limits<float>::infinity();
      v[40] = -0.0f;
      v[41] = 0.0f;
      v[42] = 0.0f;
      v[43] = -0.0f;
      const nlohmann::json params{{"kernel_size", Dims(dims.size() - 2, 2)}};
      const auto fast = testing::run_one(Backend::onednn, type, params, {input}, {});
      const auto portable = [&] {
        const testing::PortableLoops loops;
        return testing::run_one(Backend::onednn, type, params, {input}, {});
      }();
      ASSERT_EQ(fast.dims(), portable.dims());
      EXPECT_EQ(std::memcmp(fast.data(), portable.data(), fast.size() * sizeof(float)), 0)
          << layer_type_name(type) << " " << to_string(dims);
    }
  }
}

TEST(MaxPool, TakesTheLargestValueOfEachWindow) {
  const Tensor input({1, 1, 2, 4}, {1, 5, 2, 0, 3, 4, 8, 7});
  const auto dst = testing::run_one(Backend::onednn, LayerType::max_pool, {{"kernel_size", {2, 2}}},
                                    {input}, {});
  EXPECT_EQ(dst.dims(), (Dims{1, 1, 1, 2}));
  EXPECT_EQ(dst.data()[0], 5.0f);
  EXPECT_EQ(dst.data()[1], 8.0f);
}

TEST(GlobalAvgPool, GivesOneValuePerChannel) {
  const auto out =
      testing::run_both(LayerType::global_avg_pool, nlohmann::json::object(), {{3, 2, 4, 5}});
  EXPECT_EQ(out.onednn.dims(), (Dims{3, 2, 1, 1}));
}

// A pooling layer prepared for `dims` on `ctx`, which refused both blocked layouts before its
// prepare (it knows no dims yet).
std::unique_ptr<Layer> prepared_pool(const Context& ctx, LayerType type,
                                     const nlohmann::json& params, const Dims& dims) {
  auto layer = create_layer(type, "p");
  layer->load_params(params);
  layer->load_weights({});
  auto& pool = dynamic_cast<PoolingLayer&>(*layer);
  EXPECT_FALSE(pool.take_blocked(8));
  EXPECT_FALSE(pool.read_blocked(8));
  layer->prepare(ctx, {dims});
  return layer;
}

// A max pooling, prepared, takes a layout of blocks of 8 or 16 channels, or channels last, when
// told to: its output is the plain layout's bytes in that layout (2D and 3D, batch 1 and 2,
// padding, overlapping windows, a floor-mode remainder within the padding). It refuses another
// block, a second one, an average pooling, a pooling not yet prepared, and one whose floor mode
// leaves input values out.
TEST(MaxPool, TakesBlockedLayoutsAsTheyAre) {
  const Context ctx(2);
  const auto make = [&](LayerType type, const nlohmann::json& params, const Dims& dims) {
    return prepared_pool(ctx, type, params, dims);
  };
  const std::vector<std::pair<Dims, nlohmann::json>> cases{
      {{1, 48, 23, 20}, {{"kernel_size", {3, 3}}, {"stride", {2, 2}}, {"padding", {1, 1}}}},
      {{2, 48, 7, 9, 6},
       {{"kernel_size", {3, 3, 3}}, {"stride", {2, 2, 2}}, {"padding", {1, 1, 1}}}},
      {{1, 48, 6, 8, 10}, {{"kernel_size", {2, 2, 2}}}}};
  for (const auto& [dims, params] : cases) {
    const Tensor input = testing::random_tensor(dims, 5, -3.0f, 2.0f);
    auto plain = make(LayerType::max_pool, params, dims);
    Tensor expected(plain->dst_dims());
    plain->forward({&input}, expected);
    for (const std::int64_t block : {8, 16, 48}) {
      auto layer = make(LayerType::max_pool, params, dims);
      auto& pool = dynamic_cast<PoolingLayer&>(*layer);
      ASSERT_TRUE(pool.take_blocked(block)) << block;
      EXPECT_EQ(pool.channel_block(), block);
      EXPECT_FALSE(pool.take_blocked(block));
      const Tensor blocked = testing::reblock(input, block, false);
      Tensor out(layer->dst_dims(), NAN);
      layer->forward({&blocked}, out);
      const Tensor got = testing::reblock(out, block, true);
      EXPECT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * got.size()), 0)
          << to_string(dims) << " block " << block;
    }
    auto refused = make(LayerType::max_pool, params, dims);
    auto& pool = dynamic_cast<PoolingLayer&>(*refused);
    EXPECT_FALSE(pool.take_blocked(12));
    EXPECT_FALSE(pool.take_blocked(24));
    EXPECT_FALSE(pool.take_blocked(96));
    EXPECT_EQ(pool.channel_block(), 1);
    auto average = make(LayerType::avg_pool, params, dims);
    EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*average).take_blocked(16));
  }
  // 5 wide, kernel 2, stride 2: the floor mode leaves the fifth value out, which oneDNN's kernel
  // would take as a padding of -1 on the right.
  auto wide = make(LayerType::max_pool, {{"kernel_size", {2, 2}}}, {1, 16, 5, 4});
  ASSERT_EQ(wide->dst_dims(), (Dims{1, 16, 2, 2}));
  EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*wide).take_blocked(16));
}

// A max or average pooling whose windows tile its input reads a layout of blocks of 8 or 16
// channels, or channels last, when told to, and writes PyTorch's layout: the bytes of the pooling
// of the plain input (2D and 3D, batch 1 and 2, windows of 2 and 3, rows left over by the floor
// mode). It refuses another block, a second call, overlapping or padded windows, a global
// pooling and a pooling not yet prepared.
TEST(Pooling, ReadsBlockedLayoutsIntoPyTorchsLayout) {
  const Context ctx(2);
  const auto make = [&](LayerType type, const nlohmann::json& params, const Dims& dims) {
    return prepared_pool(ctx, type, params, dims);
  };
  const std::vector<std::pair<Dims, nlohmann::json>> cases{
      {{2, 48, 10, 11}, {{"kernel_size", {2, 2}}}},
      {{1, 48, 6, 7, 9}, {{"kernel_size", {3, 3, 3}}}},
      {{2, 48, 4, 5, 8}, {{"kernel_size", {2, 1, 2}}}}};
  for (const auto& [dims, params] : cases) {
    const Tensor input = testing::random_tensor(dims, 7, -3.0f, 2.0f);
    for (const LayerType type : {LayerType::max_pool, LayerType::avg_pool}) {
      auto plain = make(type, params, dims);
      Tensor expected(plain->dst_dims());
      plain->forward({&input}, expected);
      for (const std::int64_t block : {8, 16, 48}) {
        auto layer = make(type, params, dims);
        auto& pool = dynamic_cast<PoolingLayer&>(*layer);
        ASSERT_TRUE(pool.read_blocked(block)) << block;
        EXPECT_FALSE(pool.read_blocked(block));
        EXPECT_FALSE(pool.take_blocked(block));
        const Tensor blocked = testing::reblock(input, block, false);
        Tensor out(layer->dst_dims(), NAN);
        layer->forward({&blocked}, out);
        EXPECT_EQ(std::memcmp(out.data(), expected.data(), sizeof(float) * out.size()), 0)
            << to_string(dims) << " block " << block;
      }
      EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*make(type, params, dims)).read_blocked(12));
    }
  }
  const Dims dims{1, 16, 9, 9};
  for (const auto& [type, params] : std::vector<std::pair<LayerType, nlohmann::json>>{
           {LayerType::max_pool, {{"kernel_size", {3, 3}}, {"stride", {2, 2}}}},
           {LayerType::avg_pool, {{"kernel_size", {2, 2}}, {"padding", {1, 1}}}},
           {LayerType::global_avg_pool, nlohmann::json::object()}}) {
    EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*make(type, params, dims)).read_blocked(16))
        << params.dump();
  }
}

// In training a max pooling whose windows tile its input takes blocks of 8 or 16 channels in and
// out, and their gradients, when told to (a U-Net's skip, Net::link_training_layouts): the bytes
// of PyTorch's layout, output and input gradient, with ties in a window (the first input takes
// the gradient), a window all -inf (its first input does), and inputs past the last window (none).
// Not for an average pooling, overlapping windows or inference.
TEST(MaxPool, TrainsOnBlockedLayoutsWithThePlainLayoutsBytes) {
  const Context ctx(2);
  const auto make = [&](const nlohmann::json& params, const Dims& dims, bool training) {
    auto layer = create_layer(LayerType::max_pool, "p");
    layer->load_params(params);
    layer->load_weights({});
    layer->set_training(training);
    layer->prepare(ctx, {dims});
    return layer;
  };
  const std::vector<std::pair<Dims, nlohmann::json>> cases{
      {{2, 32, 5, 6, 7}, {{"kernel_size", {2, 2, 2}}}},
      {{1, 16, 4, 6}, {{"kernel_size", {2, 2}}}},
      {{1, 16, 3, 3, 4}, {{"kernel_size", {3, 3, 2}}}}};
  for (const auto& [dims, params] : cases) {
    Tensor input = testing::random_tensor(dims, 9, -3.0f, 2.0f);
    const std::int64_t row = dims.back();
    input.data()[1] = input.data()[0];  // a tie in the first window
    for (const std::int64_t at : {std::int64_t{0}, std::int64_t{1}, row, row + 1}) {
      input.data()[input.size() / 2 + at] = -std::numeric_limits<float>::infinity();
    }
    auto plain = make(params, dims, true);
    Tensor out(plain->dst_dims(), NAN);
    plain->forward({&input}, out);
    const Tensor diff_out = testing::random_tensor(out.dims(), 10);
    Tensor diff_in(dims, NAN);
    std::vector<Tensor*> diff_src{&diff_in};
    plain->backward({&input}, out, diff_out, diff_src);
    for (const std::int64_t block : {8, 16}) {
      auto layer = make(params, dims, true);
      auto& pool = dynamic_cast<PoolingLayer&>(*layer);
      ASSERT_TRUE(pool.can_take_blocked_in_training(block)) << block;
      EXPECT_FALSE(pool.can_take_blocked_in_training(12));
      pool.take_blocked_in_training(block);
      const Tensor blocked = testing::reblock(input, block, false);
      Tensor got(layer->dst_dims(), NAN);
      layer->forward({&blocked}, got);
      const Tensor expected = testing::reblock(out, block, false);
      EXPECT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * got.size()), 0)
          << to_string(dims) << " block " << block;
      Tensor got_diff(dims, NAN);
      std::vector<Tensor*> got_diff_src{&got_diff};
      layer->backward({&blocked}, got, testing::reblock(diff_out, block, false), got_diff_src);
      const Tensor expected_diff = testing::reblock(diff_in, block, false);
      EXPECT_EQ(std::memcmp(got_diff.data(), expected_diff.data(), sizeof(float) * got_diff.size()),
                0)
          << to_string(dims) << " block " << block;
    }
  }
  const Dims dims{1, 16, 8, 8};
  EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*make({{"kernel_size", {2, 2}}}, dims, false))
                   .can_take_blocked_in_training(16));
  EXPECT_FALSE(
      dynamic_cast<PoolingLayer&>(*make({{"kernel_size", {3, 3}}, {"stride", {2, 2}}}, dims, true))
          .can_take_blocked_in_training(16));
  auto avg = create_layer(LayerType::avg_pool, "p");
  avg->load_params({{"kernel_size", {2, 2}}});
  avg->load_weights({});
  avg->set_training(true);
  avg->prepare(ctx, {dims});
  EXPECT_FALSE(dynamic_cast<PoolingLayer&>(*avg).can_take_blocked_in_training(16));
}

TEST(MaxPool, RejectsPaddingOverHalfTheKernel) {
  auto layer = create_layer(LayerType::max_pool, "p");
  EXPECT_THROW(layer->load_params({{"kernel_size", {2, 2}}, {"padding", 2}}), Error);
}

}  // namespace
}  // namespace cajal::engine
