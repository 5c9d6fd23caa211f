// Backward passes of convolution, transposed convolution, linear and pooling: the oneDNN layer
// against its naive twin over a grid of shapes, and the twin against finite differences.
#include "engine/layer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include "core/error.h"
#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/layers/convolution.h"
#include "tests/engine/backward_harness.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

using testing::BackwardCase;
using testing::Gradients;

struct GradCase {
  std::string name;
  LayerType type;
  nlohmann::json params;
  Dims input;
};

void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.name;
}

std::string case_name(const ::testing::TestParamInfo<GradCase>& info) {
  return info.param.name;
}

nlohmann::json conv(std::int64_t in, std::int64_t out, Dims kernel, Dims stride, Dims padding,
                    Dims dilation, std::int64_t groups = 1, bool bias = true,
                    Dims output_padding = {}) {
  nlohmann::json params{{"in_channels", in}, {"out_channels", out}, {"kernel_size", kernel},
                        {"stride", stride},  {"padding", padding},  {"dilation", dilation},
                        {"groups", groups},  {"bias", bias}};
  if (!output_padding.empty()) {
    params["output_padding"] = output_padding;
  }
  return params;
}

constexpr auto kConv = LayerType::convolution;
constexpr auto kUp = LayerType::transposed_convolution;

std::vector<GradCase> grid() {
  return {
      {"Conv2dPlain", kConv, conv(3, 4, {3, 3}, {1, 1}, {0, 0}, {1, 1}), {2, 3, 9, 11}},
      // One-voxel kernels into at most 16 channels (by hand in training: 1188 positions, three
      // chunks, the last of 164; 63; a batch of 2; the CT model's 8 into 12; 16), and into 17
      // (oneDNN).
      {"Conv3dPointwiseHead",
       kConv,
       conv(16, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}),
       {1, 16, 11, 12, 9}},
      {"Conv2dPointwiseNoBias",
       kConv,
       conv(5, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false),
       {2, 5, 7, 9}},
      {"Conv3dPointwiseFourOutputs",
       kConv,
       conv(3, 4, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}),
       {2, 3, 4, 5, 6}},
      {"Conv3dPointwiseTwelveOutputs",
       kConv,
       conv(8, 12, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}),
       {2, 8, 4, 6, 9}},
      {"Conv2dPointwiseSixteenOutputs",
       kConv,
       conv(16, 16, {1, 1}, {1, 1}, {0, 0}, {1, 1}),
       {1, 16, 6, 7}},
      {"Conv2dPointwiseSeventeenOutputs",
       kConv,
       conv(4, 17, {1, 1}, {1, 1}, {0, 0}, {1, 1}),
       {1, 4, 6, 7}},
      {"Conv2dStride2Padding1", kConv, conv(4, 8, {3, 3}, {2, 2}, {1, 1}, {1, 1}), {1, 4, 15, 9}},
      {"Conv2dDilation2", kConv, conv(3, 5, {3, 3}, {1, 1}, {2, 2}, {2, 2}), {1, 3, 13, 12}},
      {"Conv2dGroups2NoBias",
       kConv,
       conv(4, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, false),
       {2, 4, 10, 9}},
      {"Conv2dDepthwise", kConv, conv(6, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 6), {1, 6, 8, 7}},
      {"Conv2dAnisotropic", kConv, conv(2, 3, {5, 3}, {2, 1}, {2, 0}, {1, 2}), {1, 2, 11, 10}},
      {"Conv2d16Channels", kConv, conv(16, 16, {3, 3}, {1, 1}, {1, 1}, {1, 1}), {2, 16, 7, 6}},
      {"Conv3dPlain",
       kConv,
       conv(2, 4, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}),
       {1, 2, 5, 6, 7}},
      {"Conv3dStride2Padding1",
       kConv,
       conv(3, 5, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}),
       {2, 3, 9, 7, 8}},
      {"Conv3dDilation2Groups2",
       kConv,
       conv(4, 4, {3, 3, 3}, {1, 1, 1}, {2, 2, 2}, {2, 2, 2}, 2),
       {1, 4, 7, 9, 8}},
      // One or two input channels: the weight gradient is summed directly, not by oneDNN.
      {"Conv2dOneChannelStem", kConv, conv(1, 6, {5, 5}, {1, 1}, {2, 2}, {1, 1}), {3, 1, 9, 8}},
      {"Conv3dOneChannelStride2Dilation2NoBias",
       kConv,
       conv(1, 3, {3, 3, 2}, {2, 1, 2}, {1, 2, 0}, {1, 2, 1}, 1, false),
       {2, 1, 7, 9, 8}},
      // Rows of 37 and 21 outputs: the direct sum's blocks of 16 and their remainders.
      {"Conv2dOneChannelLongRows",
       kConv,
       conv(1, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}),
       {2, 1, 5, 37}},
      {"Conv3dTwoChannelsStride2LongRows",
       kConv,
       conv(2, 3, {3, 3, 3}, {1, 1, 2}, {1, 1, 1}, {1, 1, 1}),
       {1, 2, 3, 4, 41}},
      {"Conv3dTwoChannelsStride2Padding1",
       kConv,
       conv(2, 4, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}),
       {2, 2, 6, 7, 9}},
      // Two channels, 18 taps gathered per column; 5 output channels (blocks of 3 and 2), stride 2
      // along H, rows of the kernel in the padding.
      {"Conv2dTwoChannelsGatheredTapsStrideH2",
       kConv,
       conv(2, 5, {3, 3}, {2, 1}, {1, 1}, {1, 1}),
       {2, 2, 7, 19}},
      // One channel into one: the kernel's rows split among the threads; unit stride along W,
      // rows of 19 (two chunks of 8 and an overlapping last one) in planes of several rows.
      {"Conv3dOneToOneKernelRowsSplit",
       kConv,
       conv(1, 1, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {2, 1, 4, 5, 19}},
      // One channel, unit stride along W, a kernel 3 or 5 wide: where the AVX-512 kernels run,
      // kOut x kKW sums in registers (single_channel_weight_gradient): output channels in blocks
      // of 3 (kernel 5 wide: 7 = 3 + 3 + 1) and 8 (3 wide: 16 = 8 + 8), rows of 37 and 21 (two or
      // one vectors and a remainder), strides along D and H, LeNet-5's C1.
      {"Conv2dOneChannelKernel5Rows37",
       kConv,
       conv(1, 7, {5, 5}, {1, 1}, {2, 2}, {1, 1}),
       {2, 1, 6, 37}},
      // One or two channels into 16, unit stride: where oneDNN runs its AVX-512 kernels, its
      // first-layer weight gradient on blocks of 16 (not the engine's loops).
      {"Conv3dOneChannelTo16UnitStride",
       kConv,
       conv(1, 16, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {2, 1, 5, 6, 7}},
      {"Conv3dTwoChannelsTo32NoBias",
       kConv,
       conv(2, 32, {3, 3, 3}, {1, 1, 1}, {1, 0, 1}, {1, 1, 1}, 1, false),
       {1, 2, 4, 6, 9}},
      {"Conv3dOneChannelTo16StrideDH2",
       kConv,
       conv(1, 16, {3, 3, 3}, {2, 2, 1}, {1, 1, 1}, {1, 1, 1}),
       {2, 1, 5, 7, 21}},
      {"Conv2dLeNetC1", kConv, conv(1, 6, {5, 5}, {1, 1}, {0, 0}, {1, 1}), {3, 1, 32, 32}},
      // LeNet-5's C3: where oneDNN runs its AVX-512 kernels, the weight gradient on nhwc.
      {"Conv2dLeNetC3", kConv, conv(6, 16, {5, 5}, {1, 1}, {0, 0}, {1, 1}), {3, 6, 14, 14}},
      // A kernel that covers its whole input (LeNet-5's C5): oneDNN's inner product.
      {"Conv2dKernelCoversInput", kConv, conv(4, 7, {5, 5}, {1, 1}, {0, 0}, {1, 1}), {3, 4, 5, 5}},
      {"Conv3dKernelCoversInputNoBias",
       kConv,
       conv(2, 5, {3, 4, 2}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, 1, false),
       {2, 2, 3, 4, 2}},
      // As large as its input but padded: an ordinary convolution.
      {"Conv2dKernelAsLargeAsInputPadded",
       kConv,
       conv(2, 3, {3, 3}, {1, 1}, {1, 1}, {1, 1}),
       {2, 2, 3, 3}},
      {"Conv3d16To8Channels",
       kConv,
       conv(16, 8, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {1, 16, 5, 4, 6}},
      // Channels in blocks of 8, unit stride, 3 taps along W: the weight gradient summed by the
      // engine's AVX2 loop on the blocked copies (blocked_weight_gradient), with rows where every
      // tap is inside, rows of edges only (W of 2 with padding 2), no padding along W, a batch,
      // one block pair split along D, and no bias.
      {"Conv3d8To16Blocked",
       kConv,
       conv(8, 16, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {2, 8, 4, 5, 11}},
      {"Conv3d16To8BlockedKernel233NoPadW",
       kConv,
       conv(16, 8, {2, 3, 3}, {1, 1, 1}, {0, 1, 0}, {1, 1, 1}),
       {1, 16, 5, 4, 7}},
      {"Conv3d8To8BlockedEdgesOnlyNoBias",
       kConv,
       conv(8, 8, {3, 3, 3}, {1, 1, 1}, {2, 2, 2}, {1, 1, 1}, 1, false),
       {1, 8, 3, 2, 2}},
      // Into one block of 16 channels, unit stride: where oneDNN runs its AVX-512 kernels, the
      // data pass is a forward convolution by the flipped weights (gradient_by_forward), padded
      // by kernel - 1 - padding: 16 and 32 inputs, a kernel of 2 taps along D padded by 1, of 3
      // along H padded by 2, along W unpadded, no bias; and padding beyond it (oneDNN's data pass).
      {"Conv3d16To16DataByForward",
       kConv,
       conv(16, 16, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {2, 16, 4, 5, 6}},
      {"Conv3d32To16DataByForwardKernel233",
       kConv,
       conv(32, 16, {2, 3, 3}, {1, 1, 1}, {1, 2, 0}, {1, 1, 1}, 1, false),
       {1, 32, 3, 4, 5}},
      {"Conv3d16To16PaddedBeyondKernel",
       kConv,
       conv(16, 16, {3, 1, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}),
       {1, 16, 3, 4, 5}},
      {"Up2dStride2Kernel2", kUp, conv(4, 3, {2, 2}, {2, 2}, {0, 0}, {1, 1}), {1, 4, 5, 7}},
      {"Up2dOutputPadding1",
       kUp,
       conv(3, 4, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, true, {1, 1}),
       {2, 3, 6, 5}},
      {"Up2dGroups2NoBias",
       kUp,
       conv(4, 6, {3, 3}, {2, 2}, {0, 0}, {1, 1}, 2, false),
       {1, 4, 6, 6}},
      {"Up2dDilation2", kUp, conv(2, 3, {3, 3}, {1, 1}, {1, 1}, {2, 2}), {1, 2, 5, 6}},
      {"Up3dStride2Kernel2",
       kUp,
       conv(8, 4, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}),
       {1, 8, 3, 5, 4}},
      {"Up3dOutputPadding1",
       kUp,
       conv(3, 2, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1, true, {1, 0, 1}),
       {1, 3, 4, 3, 5}},
      {"Up3d16To16Channels",
       kUp,
       conv(16, 16, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}),
       {1, 16, 3, 2, 3}},
      // Kernel equal to stride into one block of 16, where the AVX-512 kernels run: forward and
      // gradients by hand on the block (unpool_backward_blocked): 5 inputs (a group of 4 and
      // one alone), two samples, rows of 6 (a voxel left after the fours); 40 inputs (two
      // blocks of 16 at a time, the last padded) in 2D with 6 taps, no bias; 9 taps (two groups
      // of 4 and one).
      {"Up3d5To16Batch2",
       kUp,
       conv(5, 16, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}),
       {2, 5, 2, 3, 6}},
      {"Up2d40To16Kernel3x2NoBias",
       kUp,
       conv(40, 16, {3, 2}, {3, 2}, {0, 0}, {1, 1}, 1, false),
       {1, 40, 3, 17}},
      {"Up2d3To16Kernel3x3", kUp, conv(3, 16, {3, 3}, {3, 3}, {0, 0}, {1, 1}), {1, 3, 2, 5}},
      {"Linear", LayerType::linear, {{"in_features", 13}, {"out_features", 7}}, {5, 13}},
      {"LinearNoBias",
       LayerType::linear,
       {{"in_features", 33}, {"out_features", 16}, {"bias", false}},
       {3, 33}},
      {"MaxPool2d", LayerType::max_pool, {{"kernel_size", {2, 2}}}, {2, 3, 9, 8}},
      {"MaxPool2dStride2Padding1",
       LayerType::max_pool,
       {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}},
       {1, 2, 11, 9}},
      {"MaxPool3dOverlapping",
       LayerType::max_pool,
       {{"kernel_size", {3, 3, 3}}, {"stride", 1}},
       {1, 2, 5, 6, 4}},
      {"AvgPool2d", LayerType::avg_pool, {{"kernel_size", {2, 2}}}, {2, 3, 9, 8}},
      {"AvgPool2dPaddingCounted",
       LayerType::avg_pool,
       {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}},
       {1, 2, 9, 11}},
      {"AvgPool2dPaddingNotCounted",
       LayerType::avg_pool,
       {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}, {"count_include_pad", false}},
       {1, 2, 9, 11}},
      {"AvgPool3d",
       LayerType::avg_pool,
       {{"kernel_size", {2, 3, 2}}, {"stride", {2, 1, 2}}},
       {1, 3, 5, 6, 7}},
      {"GlobalAvgPool2d", LayerType::global_avg_pool, nlohmann::json::object(), {2, 5, 7, 6}},
      {"GlobalAvgPool3d", LayerType::global_avg_pool, nlohmann::json::object(), {1, 4, 3, 5, 4}},
      // Windows that tile the input, a voxel left over along D and W.
      {"AvgPool3dTiles", LayerType::avg_pool, {{"kernel_size", {2, 2, 2}}}, {1, 2, 5, 6, 7}},
      // Rows of 17 and 16 windows 2 wide (AVX2, 8 at a time): a column left over, and none.
      {"AvgPool2dTilesLongRows", LayerType::avg_pool, {{"kernel_size", {2, 2}}}, {2, 3, 6, 35}},
      {"AvgPool3dTilesCoverTheInput",
       LayerType::avg_pool,
       {{"kernel_size", {2, 2, 2}}},
       {1, 2, 4, 4, 32}},
  };
}

class BackwardGrid : public ::testing::TestWithParam<GradCase> {};

// The largest relative error of the engine's gradients against the naive twin's, on the
// engine's AVX2 and FMA kernels or (`portable`) on their portable loops; `worst` names it.
double worst_error(const GradCase& c, bool portable, std::string& worst) {
  const auto data = testing::make_backward_case(c.type, c.params, {c.input});
  const auto engine = [&] {
    std::optional<testing::PortableLoops> loops;
    if (portable) {
      loops.emplace();
    }
    return testing::run_backward(Backend::onednn, c.type, c.params, data.inputs, data.weights,
                                 data.diff_dst);
  }();
  const auto reference = testing::run_backward(Backend::reference, c.type, c.params, data.inputs,
                                               data.weights, data.diff_dst);
  return testing::worst_relative_error(engine, reference, worst);
}

TEST_P(BackwardGrid, MatchesReference) {
  std::string worst;
  EXPECT_LE(worst_error(GetParam(), false, worst), 1e-4) << worst;
}

TEST_P(BackwardGrid, MatchesReferenceOnPortableLoops) {
  std::string worst;
  EXPECT_LE(worst_error(GetParam(), true, worst), 1e-4) << worst;
}

INSTANTIATE_TEST_SUITE_P(Shapes, BackwardGrid, ::testing::ValuesIn(grid()), case_name);

// Average pooling's gradient over rows of 2-wide windows by AVX2 gives the portable loop's bytes.
TEST(AvgPoolBackward, PairsByAvx2GiveThePortableLoopsBytes) {
  for (const Dims& dims : {Dims{2, 3, 6, 35}, Dims{1, 2, 4, 4, 32}}) {
    const nlohmann::json params{{"kernel_size", Dims(dims.size() - 2, 2)}};
    const auto data = testing::make_backward_case(LayerType::avg_pool, params, {dims});
    const auto run = [&] {
      return testing::run_backward(Backend::onednn, LayerType::avg_pool, params, data.inputs,
                                   data.weights, data.diff_dst);
    };
    const auto fast = run();
    const auto portable = [&] {
      const testing::PortableLoops loops;
      return run();
    }();
    ASSERT_EQ(fast.diff_src.size(), 1u);
    ASSERT_EQ(fast.diff_src[0].dims(), portable.diff_src[0].dims());
    EXPECT_EQ(std::memcmp(fast.diff_src[0].data(), portable.diff_src[0].data(),
                          fast.diff_src[0].size() * sizeof(float)),
              0)
        << to_string(dims);
  }
}

// Tiny shapes: every value of the input and of each weight is perturbed.
std::vector<GradCase> tiny() {
  return {
      {"Conv2dStride2Padding1", kConv, conv(2, 3, {3, 3}, {2, 2}, {1, 1}, {1, 1}), {2, 2, 5, 4}},
      {"Conv2dDilation2Groups2",
       kConv,
       conv(2, 4, {2, 2}, {1, 1}, {1, 0}, {2, 2}, 2),
       {1, 2, 5, 5}},
      {"Conv3d", kConv, conv(2, 2, {2, 3, 2}, {1, 2, 1}, {1, 1, 0}, {1, 1, 1}), {1, 2, 3, 4, 3}},
      {"Up2dOutputPadding1",
       kUp,
       conv(2, 3, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, true, {1, 1}),
       {2, 2, 3, 2}},
      {"Up3dGroups2",
       kUp,
       conv(2, 2, {2, 2, 2}, {2, 1, 2}, {0, 0, 0}, {1, 1, 1}, 2),
       {1, 2, 2, 3, 2}},
      {"Linear", LayerType::linear, {{"in_features", 5}, {"out_features", 3}}, {2, 5}},
      {"MaxPool2dStride2Padding1",
       LayerType::max_pool,
       {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}},
       {2, 2, 5, 6}},
      {"MaxPool3d",
       LayerType::max_pool,
       {{"kernel_size", {2, 2, 2}}, {"stride", 1}},
       {1, 2, 3, 4, 3}},
      {"AvgPool2dPaddingNotCounted",
       LayerType::avg_pool,
       {{"kernel_size", {3, 3}}, {"stride", 2}, {"padding", 1}, {"count_include_pad", false}},
       {1, 2, 5, 6}},
      {"AvgPool3dPaddingCounted",
       LayerType::avg_pool,
       {{"kernel_size", {2, 2, 2}}, {"padding", 1}},
       {1, 1, 3, 4, 3}},
      {"GlobalAvgPool2d", LayerType::global_avg_pool, nlohmann::json::object(), {2, 3, 3, 4}},
  };
}

// Distinct values at least 0.05 apart, so a perturbation of 0.01 never changes which is largest.
void spread_values(Tensor& tensor, std::uint32_t seed) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(tensor.size()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  for (std::int64_t i = 0; i < tensor.size(); ++i) {
    tensor.data()[i] = 0.05f * static_cast<float>(order[static_cast<std::size_t>(i)]) - 1.0f;
  }
}

class FiniteDifferences : public ::testing::TestWithParam<GradCase> {};

TEST_P(FiniteDifferences, MatchReferenceBackward) {
  const auto& c = GetParam();
  auto data = testing::make_backward_case(c.type, c.params, {c.input});
  // Every layer here but max pooling is linear in its input and in its weights, so a large step
  // is exact up to rounding; max pooling is linear between the points where the maximum moves.
  const bool max = c.type == LayerType::max_pool;
  if (max) {
    spread_values(data.inputs[0], 3);
  }
  const auto expected = testing::finite_differences(c.type, c.params, data.inputs, data.weights,
                                                    data.diff_dst, max ? 0.01 : 0.5);
  const auto reference = testing::run_backward(Backend::reference, c.type, c.params, data.inputs,
                                               data.weights, data.diff_dst);
  std::string worst;
  EXPECT_LE(testing::worst_relative_error(reference, expected, worst), 1e-4) << worst;
}

INSTANTIATE_TEST_SUITE_P(TinyShapes, FiniteDifferences, ::testing::ValuesIn(tiny()), case_name);

const nlohmann::json kConvParams = conv(3, 16, {3, 3}, {1, 1}, {1, 1}, {1, 1});

// Windows with several equal maxima (inputs rounded to a few values, overlapping windows,
// padding): the gradient goes to the first in window order, as PyTorch and the naive twin give it.
TEST(MaxPoolBackward, GivesATieToTheFirstMaximum) {
  for (const auto& [params, dims] :
       {std::pair{nlohmann::json{{"kernel_size", {3, 3, 3}}, {"stride", 2}, {"padding", 1}},
                  Dims{1, 2, 5, 6, 7}},
        std::pair{nlohmann::json{{"kernel_size", {2, 2}}}, Dims{2, 3, 6, 8}}}) {
    auto data = testing::make_backward_case(LayerType::max_pool, params, {dims});
    for (auto& v : data.inputs[0].values()) {
      v = std::round(v * 1.5f);
    }
    const auto onednn = testing::run_backward(Backend::onednn, LayerType::max_pool, params,
                                              data.inputs, data.weights, data.diff_dst);
    const auto reference = testing::run_backward(Backend::reference, LayerType::max_pool, params,
                                                 data.inputs, data.weights, data.diff_dst);
    std::string worst;
    EXPECT_LE(testing::worst_relative_error(onednn, reference, worst), 1e-6) << worst;
  }
}

// Max pooling's gradient over windows that tile the input, rows of windows 2 wide by AVX2 (rows
// of 13, the last 8 overlapping, and of 8; an input row and plane outside every window): ties to
// the first maximum as the naive twin gives them, and the portable loop's bytes, with NaN in
// some windows and -0 gradients too.
TEST(MaxPoolBackward, TiledPairsByAvx2GiveThePortableLoopsBytes) {
  for (const auto& [kernel, dims] :
       {std::pair{Dims{2, 2}, Dims{2, 3, 6, 26}}, std::pair{Dims{2, 2, 2}, Dims{1, 2, 4, 6, 27}},
        std::pair{Dims{3, 2, 2}, Dims{1, 1, 7, 5, 16}}}) {
    const nlohmann::json params{{"kernel_size", kernel}};
    auto data = testing::make_backward_case(LayerType::max_pool, params, {dims});
    for (auto& v : data.inputs[0].values()) {
      v = std::round(v * 1.5f);
    }
    const auto run = [&](Backend backend) {
      return testing::run_backward(backend, LayerType::max_pool, params, data.inputs, data.weights,
                                   data.diff_dst);
    };
    const auto same_bytes = [&](const char* what) {
      const auto fast = run(Backend::onednn);
      const auto portable = [&] {
        const testing::PortableLoops loops;
        return run(Backend::onednn);
      }();
      const auto& a = fast.diff_src.at(0);
      const auto& b = portable.diff_src.at(0);
      EXPECT_TRUE(a.dims() == b.dims() &&
                  std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0)
          << what << " " << to_string(dims);
      return fast;
    };
    std::string worst;
    EXPECT_LE(testing::worst_relative_error(same_bytes("ties"), run(Backend::reference), worst),
              1e-6)
        << worst << " " << to_string(dims);
    for (const std::int64_t at : {0, 5, 41}) {
      data.inputs[0].data()[at] = std::numeric_limits<float>::quiet_NaN();
    }
    // A whole window of NaN (the fifth of the first row): its gradient to its first input.
    const std::int64_t depth = kernel.size() == 3 ? kernel[0] : 1;
    const std::int64_t width = dims.back();
    const std::int64_t plane_rows = dims[dims.size() - 2];
    for (std::int64_t kd = 0; kd < depth; ++kd) {
      for (std::int64_t kh = 0; kh < kernel[kernel.size() - 2]; ++kh) {
        for (std::int64_t kw = 0; kw < 2; ++kw) {
          data.inputs[0].data()[(kd * plane_rows + kh) * width + 8 + kw] =
              std::numeric_limits<float>::quiet_NaN();
        }
      }
    }
    for (std::int64_t at = 0; at < data.diff_dst.size(); at += 7) {
      data.diff_dst.data()[at] = -0.0f;
    }
    same_bytes("NaN and -0");
  }
}

// oneDNN's weight gradient (2D) and the blocked one (3D, 8 channels) alike.
TEST(ConvBackward, AddsToTheGradientOnEveryCall) {
  const std::vector<std::pair<nlohmann::json, Dims>> cases{
      {kConvParams, {1, 3, 6, 7}},
      {conv(8, 8, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}), {1, 8, 3, 4, 5}},
      {conv(8, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), {1, 8, 3, 4, 5}}};
  for (const auto& [params, input_dims] : cases) {
    const auto data = testing::make_backward_case(kConv, params, {input_dims});
    const Context ctx(2);
    auto layer = create_layer(kConv, "layer");
    layer->load_params(params);
    layer->load_weights(data.weights);
    layer->set_training(true);
    Tensor dst(layer->prepare(ctx, {input_dims}));
    layer->forward({&data.inputs[0]}, dst);
    layer->backward({&data.inputs[0]}, dst, data.diff_dst, {nullptr});
    const Tensor once = layer->grad("weight");
    const Tensor bias_once = layer->grad("bias");
    layer->backward({&data.inputs[0]}, dst, data.diff_dst, {nullptr});
    Tensor twice = once;
    for (auto& v : twice.values()) {
      v *= 2.0f;
    }
    Tensor bias_twice = bias_once;
    for (auto& v : bias_twice.values()) {
      v *= 2.0f;
    }
    EXPECT_LE(testing::relative_error(layer->grad("weight"), twice), 1e-6) << input_dims.size();
    EXPECT_LE(testing::relative_error(layer->grad("bias"), bias_twice), 1e-6) << input_dims.size();
    layer->zero_grad();
    EXPECT_EQ(testing::relative_error(layer->grad("bias"), Tensor(bias_once.dims())), 0.0);
  }
}

// A one-voxel kernel into at most 16 channels runs by hand in training only (pointwise.h), its
// gradients the same bytes on 1 and 2 threads (the weight gradient's chunks summed
// in order); the others stay oneDNN's.
TEST(ConvBackward, PointwiseIntoFewChannelsByHandInTraining) {
  const auto runs_pointwise = [](const nlohmann::json& params, const Dims& input, bool training) {
    const Context ctx(2);
    auto layer = create_layer(kConv, "layer");
    layer->load_params(params);
    layer->load_weights(testing::make_backward_case(kConv, params, {input}).weights);
    layer->set_training(training);
    layer->prepare(ctx, {input});
    return dynamic_cast<const ConvolutionLayer&>(*layer).runs_pointwise();
  };
  const Dims input{2, 6, 5, 7, 41};
  for (const std::int64_t out : {1, 2, 4, 12, 16}) {
    EXPECT_TRUE(
        runs_pointwise(conv(6, out, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), input, true))
        << out;
  }
  EXPECT_TRUE(runs_pointwise(conv(6, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}), {1, 6, 9, 9}, true));
  EXPECT_FALSE(
      runs_pointwise(conv(6, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), input, false));
  EXPECT_FALSE(
      runs_pointwise(conv(6, 17, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), input, true));
  EXPECT_FALSE(runs_pointwise(conv(6, 2, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}), input, true));
  EXPECT_FALSE(runs_pointwise(conv(6, 2, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}), input, true));
  EXPECT_FALSE(runs_pointwise(conv(6, 2, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}), input, true));
  EXPECT_FALSE(
      runs_pointwise(conv(6, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, 2), input, true));

  const auto params = conv(6, 3, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1});
  const auto data = testing::make_backward_case(kConv, params, {input});
  const auto run = [&](int threads) {
    return testing::run_backward(Backend::onednn, kConv, params, data.inputs, data.weights,
                                 data.diff_dst, threads);
  };
  const auto one = run(1);
  const auto two = run(2);
  const auto same = [](const Tensor& a, const Tensor& b) {
    return a.dims() == b.dims() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  EXPECT_TRUE(same(one.diff_src.at(0), two.diff_src.at(0)));
  ASSERT_EQ(one.diff_weights.size(), 2u);
  for (const auto& [role, grad] : one.diff_weights) {
    EXPECT_TRUE(same(grad, two.diff_weights.at(role))) << role;
  }
}

TEST(ConvBackward, ForwardUsesWeightsChangedInPlace) {
  for (const auto type : {kConv, kUp, LayerType::linear}) {
    const auto params = type == LayerType::linear
                            ? nlohmann::json{{"in_features", 12}, {"out_features", 16}}
                            : kConvParams;
    const Dims input_dims = type == LayerType::linear ? Dims{2, 12} : Dims{1, 3, 6, 7};
    const auto data = testing::make_backward_case(type, params, {input_dims});
    const Context ctx(2);
    auto layer = create_layer(type, "layer");
    layer->load_params(params);
    layer->load_weights(data.weights);
    layer->set_training(true);
    Tensor dst(layer->prepare(ctx, {input_dims}));
    for (auto& v : layer->mutable_weight("weight").values()) {
      v = -v;
    }
    layer->weights_changed();
    layer->forward({&data.inputs[0]}, dst);
    auto negated = data.weights;
    for (auto& v : negated.at("layer.weight").values()) {
      v = -v;
    }
    const auto expected = testing::run_one(Backend::reference, type, params, data.inputs, negated);
    EXPECT_LE(testing::relative_error(dst, expected), 1e-5) << layer_type_name(type);
    // And backward reads the new weights too.
    Tensor diff_src(input_dims);
    layer->backward({&data.inputs[0]}, dst, data.diff_dst, {&diff_src});
    const auto reference = testing::run_backward(Backend::reference, type, params, data.inputs,
                                                 negated, data.diff_dst);
    EXPECT_LE(testing::relative_error(diff_src, reference.diff_src[0]), 1e-4)
        << layer_type_name(type);
  }
}

// Training's forward (by hand for the one-voxel kernels into a few channels) and inference's.
TEST(ConvBackward, TrainingForwardMatchesInference) {
  for (const auto& [params, input] :
       {std::pair{kConvParams, Dims{2, 3, 6, 7}},
        std::pair{conv(6, 3, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), Dims{2, 6, 5, 7, 41}},
        std::pair{conv(5, 2, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false), Dims{1, 5, 9, 8}},
        std::pair{conv(8, 12, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}), Dims{2, 8, 4, 6, 9}}}) {
    const auto data = testing::make_backward_case(kConv, params, {input});
    const auto inference =
        testing::run_one(Backend::onednn, kConv, params, data.inputs, data.weights);
    const Context ctx(2);
    auto layer = create_layer(kConv, "layer");
    layer->load_params(params);
    layer->load_weights(data.weights);
    layer->set_training(true);
    Tensor dst(layer->prepare(ctx, {input}));
    layer->forward({&data.inputs[0]}, dst);
    EXPECT_LE(testing::relative_error(dst, inference), 1e-6) << to_string(input);
  }
}

TEST(LayerBackward, ThrowsForALayerWithoutOne) {
  auto layer = create_layer(LayerType::argmax, "pick");
  layer->load_params(nlohmann::json::object());
  layer->load_weights({});
  layer->set_training(true);
  const Context ctx(1);
  const Tensor x = testing::random_tensor({1, 3, 2, 2}, 1);
  Tensor dst(layer->prepare(ctx, {x.dims()}));
  layer->forward({&x}, dst);
  Tensor diff_src(x.dims());
  EXPECT_THROW(layer->backward({&x}, dst, dst, {&diff_src}), Error);
}

}  // namespace
}  // namespace cajal::engine
