#include "engine/layers/convolution.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/layer_type.h"
#include "engine/layers/common.h"
#include "engine/layers/unpool.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

using testing::run_both;

struct ConvCase {
  std::string name;
  Dims input;  // [N, IC, (D,) H, W]
  std::int64_t out_channels;
  Dims kernel;
  Dims stride;
  Dims padding;
  Dims dilation;
  std::int64_t groups = 1;
  bool bias = true;
  Dims output_padding = {};  // transposed only
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << c.name;
}

nlohmann::json conv_params(const ConvCase& c) {
  nlohmann::json params{{"in_channels", c.input[1]}, {"out_channels", c.out_channels},
                        {"kernel_size", c.kernel},   {"stride", c.stride},
                        {"padding", c.padding},      {"dilation", c.dilation},
                        {"groups", c.groups},        {"bias", c.bias}};
  if (!c.output_padding.empty()) {
    params["output_padding"] = c.output_padding;
  }
  return params;
}

std::string case_name(const ::testing::TestParamInfo<ConvCase>& info) {
  return info.param.name;
}

class ConvolutionGrid : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvolutionGrid, MatchesReference) {
  const auto out = run_both(LayerType::convolution, conv_params(GetParam()), {GetParam().input});
  EXPECT_LE(out.relative_error, 1e-4);
}

// The same with the engine's AVX2 and FMA kernels off: their portable loops, which a CPU without
// them runs.
TEST_P(ConvolutionGrid, MatchesReferenceOnPortableLoops) {
  const testing::PortableLoops loops;
  const auto out = run_both(LayerType::convolution, conv_params(GetParam()), {GetParam().input});
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvolutionGrid,
    ::testing::Values(
        ConvCase{"Plain2d3x3", {1, 3, 9, 11}, 4, {3, 3}, {1, 1}, {0, 0}, {1, 1}},
        ConvCase{"Padded2dOddSizes", {2, 5, 7, 13}, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        ConvCase{"Stride2Padding1_2d", {1, 4, 15, 9}, 8, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
        ConvCase{"Dilation2_2d", {1, 3, 13, 12}, 5, {3, 3}, {1, 1}, {2, 2}, {2, 2}},
        ConvCase{"Groups2_2d", {1, 4, 10, 9}, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2},
        ConvCase{"Depthwise2d", {1, 6, 8, 7}, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 6},
        ConvCase{"NoBias1x1_2d", {3, 16, 5, 6}, 2, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1, false},
        ConvCase{"AnisotropicKernel2d", {1, 2, 11, 10}, 3, {5, 3}, {2, 1}, {2, 0}, {1, 2}},
        ConvCase{"SingleChannelInput2d", {1, 1, 17, 17}, 16, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        ConvCase{"Plain3d", {1, 2, 5, 6, 7}, 4, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}},
        ConvCase{
            "Stride2Padding1_3d", {2, 3, 9, 7, 8}, 5, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}},
        ConvCase{"Dilation2Groups2_3d",
                 {1, 4, 7, 9, 8},
                 4,
                 {3, 3, 3},
                 {1, 1, 1},
                 {2, 2, 2},
                 {2, 2, 2},
                 2},
        ConvCase{
            "AnisotropicStride3d", {1, 16, 5, 9, 9}, 8, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}},
        ConvCase{"Head1x1x1To2Channels3d",
                 {1, 16, 6, 5, 7},
                 2,
                 {1, 1, 1},
                 {1, 1, 1},
                 {0, 0, 0},
                 {1, 1, 1}},
        // 1 or 2 input channels into a number of channels not a multiple of 8 (the engine's own
        // loop): a batch, stride phases along W, rows of 21 (blocks of 8 columns and the rest),
        // 11 channels (a block of 8 and 3), rows wholly in the padding, no bias; LeNet-5's first
        // layer (rows of 28: 16 columns at a time with FMA, then 8 and 4).
        ConvCase{"ThinLeNetFirstLayer2d", {2, 1, 32, 32}, 6, {5, 5}, {1, 1}, {0, 0}, {1, 1}},
        ConvCase{"ThinPaddedRows2d", {2, 2, 7, 13}, 3, {3, 5}, {1, 1}, {1, 2}, {1, 1}},
        ConvCase{"ThinStride2Padding2Batch2d", {3, 1, 19, 23}, 6, {5, 5}, {2, 2}, {2, 2}, {1, 1}},
        ConvCase{"ThinLongRowsNoBias3d",
                 {1, 2, 4, 5, 21},
                 11,
                 {3, 3, 3},
                 {1, 1, 2},
                 {1, 1, 1},
                 {1, 1, 1},
                 1,
                 false},
        ConvCase{"ThinAnisotropicStride3d",
                 {2, 1, 5, 6, 9},
                 5,
                 {2, 3, 4},
                 {2, 1, 3},
                 {1, 1, 2},
                 {1, 1, 1}}),
    case_name);

class TransposedConvolutionGrid : public ::testing::TestWithParam<ConvCase> {};

TEST_P(TransposedConvolutionGrid, MatchesReference) {
  const auto out =
      run_both(LayerType::transposed_convolution, conv_params(GetParam()), {GetParam().input});
  EXPECT_LE(out.relative_error, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TransposedConvolutionGrid,
    ::testing::Values(
        ConvCase{"Stride2Kernel2_2d", {1, 4, 5, 7}, 3, {2, 2}, {2, 2}, {0, 0}, {1, 1}},
        ConvCase{"Stride2Padding1OutputPadding1_2d",
                 {2, 3, 6, 5},
                 4,
                 {3, 3},
                 {2, 2},
                 {1, 1},
                 {1, 1},
                 1,
                 true,
                 {1, 1}},
        ConvCase{"Stride1Padding1_2d", {1, 5, 7, 9}, 2, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        ConvCase{"Groups2NoBias2d", {1, 4, 6, 6}, 6, {3, 3}, {2, 2}, {0, 0}, {1, 1}, 2, false},
        ConvCase{"Dilation2_2d", {1, 2, 5, 6}, 3, {3, 3}, {1, 1}, {1, 1}, {2, 2}},
        ConvCase{
            "Stride2Kernel2_3d", {1, 8, 3, 5, 4}, 4, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
        ConvCase{"Stride2OutputPadding1_3d",
                 {1, 3, 4, 3, 5},
                 2,
                 {3, 3, 3},
                 {2, 2, 2},
                 {1, 1, 1},
                 {1, 1, 1},
                 1,
                 true,
                 {1, 0, 1}},
        // Kernel equal to stride 2 into more than 16 channels: one 1x1 convolution into all
        // phases, then the interleave.
        ConvCase{
            "SubPixelKernel2_3d", {1, 24, 3, 4, 5}, 20, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
        // Output channels in whole blocks of 8 and 16: every phase's rows written at once.
        ConvCase{"SubPixelKernel2WholeBlocksBatch3d",
                 {2, 8, 3, 4, 5},
                 32,
                 {2, 2, 2},
                 {2, 2, 2},
                 {0, 0, 0},
                 {1, 1, 1}},
        ConvCase{"SubPixelKernel2WholeBlocks2d", {1, 12, 5, 7}, 48, {2, 2}, {2, 2}, {0, 0}, {1, 1}},
        ConvCase{"SubPixelKernel2NoBiasBatch2d",
                 {2, 8, 5, 6},
                 17,
                 {2, 2},
                 {2, 2},
                 {0, 0},
                 {1, 1},
                 1,
                 false},
        // Kernel 3, stride 2, padding and output padding 1 (MONAI's up-sampling): in inference a
        // convolution per phase of the output (8 or 16 channels) or one for all phases (3, 5),
        // then an interleave. A batch, odd sizes, no bias.
        ConvCase{"SubPixelBatch3d",
                 {2, 16, 3, 5, 4},
                 8,
                 {3, 3, 3},
                 {2, 2, 2},
                 {1, 1, 1},
                 {1, 1, 1},
                 1,
                 true,
                 {1, 1, 1}},
        ConvCase{"SubPixelNoBias3d",
                 {1, 5, 4, 3, 7},
                 3,
                 {3, 3, 3},
                 {2, 2, 2},
                 {1, 1, 1},
                 {1, 1, 1},
                 1,
                 false,
                 {1, 1, 1}},
        ConvCase{
            "SubPixelSplit2d", {1, 16, 6, 7}, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, true, {1, 1}},
        // A convolution per phase into whole blocks of 16: the phases that share rows in pairs.
        ConvCase{"SubPixelSplitPairsBatch3d",
                 {2, 16, 3, 4, 5},
                 16,
                 {3, 3, 3},
                 {2, 2, 2},
                 {1, 1, 1},
                 {1, 1, 1},
                 1,
                 true,
                 {1, 1, 1}},
        // 4 input channels: the first phase reads them unblocked, the others cannot: all phases
        // in one convolution.
        ConvCase{"SubPixelSplitFallback2d",
                 {1, 4, 6, 7},
                 16,
                 {3, 3},
                 {2, 2},
                 {1, 1},
                 {1, 1},
                 1,
                 true,
                 {1, 1}},
        ConvCase{"SubPixelNoBiasBatch2d",
                 {3, 8, 5, 9},
                 5,
                 {3, 3},
                 {2, 2},
                 {1, 1},
                 {1, 1},
                 1,
                 false,
                 {1, 1}},
        ConvCase{"To2Channels3d", {1, 32, 3, 4, 3}, 2, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
        // Kernel equal to stride into at most 16 channels (engine's own loop): rows of 19 and 10
        // (blocks of 8 columns and a remainder), 11 and 9 channels (a block of 8 and the rest),
        // a batch, no bias, a kernel of 1, 2 and 3 along different axes, 2D with a kernel of 4.
        ConvCase{"KernelIsStrideBatchNoBias3d",
                 {2, 5, 3, 4, 19},
                 11,
                 {2, 2, 2},
                 {2, 2, 2},
                 {0, 0, 0},
                 {1, 1, 1},
                 1,
                 false},
        ConvCase{"KernelIsStrideAnisotropic3d",
                 {1, 3, 2, 3, 10},
                 9,
                 {1, 2, 3},
                 {1, 2, 3},
                 {0, 0, 0},
                 {1, 1, 1}},
        ConvCase{"KernelIsStride4_2d", {2, 6, 3, 17}, 16, {4, 4}, {4, 4}, {0, 0}, {1, 1}}),
    case_name);

TEST(Conv, MatchesReferenceForStride2Padding1) {
  const ConvCase c{"", {1, 8, 16, 16}, 8, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  const auto out = run_both(LayerType::convolution, conv_params(c), {c.input});
  EXPECT_EQ(out.onednn.dims(), (Dims{1, 8, 8, 8}));
  EXPECT_LE(out.relative_error, 1e-4);
}

TEST(Conv, FusedActivationsMatchReference) {
  for (const auto type : {LayerType::relu, LayerType::leaky_relu, LayerType::elu,
                          LayerType::sigmoid, LayerType::tanh, LayerType::gelu}) {
    const auto input = testing::random_tensor({1, 3, 7, 6, 5}, 3);
    const nlohmann::json params{
        {"in_channels", 3}, {"out_channels", 4}, {"kernel_size", {3, 3, 3}}, {"padding", 1}};
    std::vector<Tensor> outputs;
    for (const auto backend : {Backend::onednn, Backend::reference}) {
      auto conv = create_layer(LayerType::convolution, "c", backend);
      conv->load_params(params);
      conv->load_weights(testing::random_weights(*conv, 5));
      dynamic_cast<ConvolutionLayer&>(*conv).fuse({type, 0.2f});
      const Context ctx(2);
      Tensor dst(conv->prepare(ctx, {input.dims()}));
      conv->forward({&input}, dst);
      outputs.push_back(dst);
    }
    EXPECT_LE(testing::relative_error(outputs[0], outputs[1]), 1e-4) << layer_type_name(type);
  }
}

// A kernel that covers its whole input (LeNet-5's C5) runs as oneDNN's inner product: 2D and 3D,
// batch 3, with its fused tanh (by hand, twice) or a ReLU (left to the convolution), the naive
// twin's values.
TEST(Conv, KernelCoveringItsInputMatchesReference) {
  struct Case {
    Dims input;
    Dims kernel;
    std::vector<LayerType> fused;
  };
  for (const Case& c :
       {Case{{3, 16, 5, 5}, {5, 5}, {LayerType::tanh}}, Case{{3, 2, 3, 4, 2}, {3, 4, 2}, {}},
        Case{{2, 4, 3, 3}, {3, 3}, {LayerType::tanh, LayerType::tanh}},
        Case{{2, 4, 3, 3}, {3, 3}, {LayerType::relu}}}) {
    const auto input = testing::random_tensor(c.input, 3);
    const nlohmann::json params{
        {"in_channels", c.input[1]}, {"out_channels", 12}, {"kernel_size", c.kernel}};
    std::vector<Tensor> outputs;
    for (const auto backend : {Backend::onednn, Backend::reference}) {
      auto conv = create_layer(LayerType::convolution, "c", backend);
      conv->load_params(params);
      conv->load_weights(testing::random_weights(*conv, 5));
      for (const LayerType type : c.fused) {
        dynamic_cast<ConvolutionLayer&>(*conv).fuse({type, 0.0f});
      }
      const Context ctx(2);
      Tensor dst(conv->prepare(ctx, {input.dims()}));
      conv->forward({&input}, dst);
      outputs.push_back(dst);
    }
    EXPECT_LE(testing::relative_error(outputs[0], outputs[1]), 1e-5) << to_string(c.input);
  }
}

TEST(Conv, FusedResidualAddThenReluMatchesReference) {
  // 16 channels, so oneDNN picks a blocked layout and the residual is reordered into it.
  const auto input = testing::random_tensor({1, 8, 5, 6, 7}, 3);
  const auto residual = testing::random_tensor({1, 16, 5, 6, 7}, 4);
  const nlohmann::json params{
      {"in_channels", 8}, {"out_channels", 16}, {"kernel_size", {3, 3, 3}}, {"padding", 1}};
  std::vector<Tensor> outputs;
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    auto conv = create_layer(LayerType::convolution, "c", backend);
    conv->load_params(params);
    conv->load_weights(testing::random_weights(*conv, 5));
    dynamic_cast<ConvolutionLayer&>(*conv).fuse({LayerType::add, 0.0f});
    dynamic_cast<ConvolutionLayer&>(*conv).fuse({LayerType::relu, 0.0f});
    const Context ctx(2);
    Tensor dst(conv->prepare(ctx, {input.dims(), residual.dims()}));
    conv->forward({&input, &residual}, dst);
    outputs.push_back(dst);
  }
  EXPECT_LE(testing::relative_error(outputs[0], outputs[1]), 1e-4);
}

// Where the engine's AVX-512 kernels run and oneDNN computes in the channels-last layout, an
// inference convolution of one channel into 16 (a U-Net's first layer) runs by hand
// (detail::stem_convolution): rows of 19, 29 and 45 outputs (16 at a time, then 8, 4 and one by
// one), stride 2 and 1, padding, 2D and 3D, batch 2, without bias, with a fused residual add;
// within 1e-5 of the naive twin, the same bytes on 1 and 2 threads. Two input channels, 32
// outputs, a kernel 5 wide, stride 3, a fused ReLU, training or the AVX2 kernels: oneDNN.
TEST(Conv, RunsOneChannelIntoSixteenByHandWhereAvx512Runs) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  struct StemCase {
    ConvCase conv;
    bool residual = false;
    bool relu = false;
    bool by_hand = true;
  };
  const auto by_onednn = [](ConvCase conv, bool relu = false) {
    return StemCase{std::move(conv), false, relu, false};
  };
  const std::vector<StemCase> cases{
      {{"Strided3d", {1, 1, 20, 9, 37}, 16, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}},
      {{"Residual3d", {2, 1, 6, 8, 57}, 16, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}, true},
      {{"NoBias2d", {2, 1, 12, 45}, 16, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, false}},
      by_onednn({"TwoChannels", {1, 2, 6, 8, 40}, 16, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}),
      by_onednn({"ThirtyTwo", {1, 1, 6, 8, 40}, 32, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}),
      by_onednn({"FiveWide", {1, 1, 6, 8, 40}, 16, {3, 3, 5}, {2, 2, 2}, {1, 1, 2}, {1, 1, 1}}),
      by_onednn({"StrideThree", {1, 1, 6, 8, 40}, 16, {3, 3, 3}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}}),
      by_onednn({"Relu", {1, 1, 6, 8, 40}, 16, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}, true)};
  for (const StemCase& c : cases) {
    const auto input = testing::random_tensor(c.conv.input, 3);
    const auto prepared = [&](Backend backend, bool training, int threads) {
      auto layer = create_layer(LayerType::convolution, "layer", backend);
      layer->load_params(conv_params(c.conv));
      layer->load_weights(testing::random_weights(*layer, 5));
      auto& conv = dynamic_cast<ConvolutionLayer&>(*layer);
      if (c.residual) {
        conv.fuse({LayerType::add, 0.0f});
      }
      if (c.relu) {
        conv.fuse({LayerType::relu, 0.0f});
      }
      layer->set_training(training);
      std::vector<Dims> dims{c.conv.input};
      if (c.residual) {
        Dims out{c.conv.input[0], c.conv.out_channels};
        for (std::size_t a = 0; a < c.conv.kernel.size(); ++a) {
          out.push_back((c.conv.input[a + 2] + 2 * c.conv.padding[a] - c.conv.kernel[a]) /
                            c.conv.stride[a] +
                        1);
        }
        dims.push_back(out);
      }
      layer->prepare(Context(threads), dims);
      return layer;
    };
    const auto runs_stem = [](const std::unique_ptr<Layer>& layer) {
      return dynamic_cast<const ConvolutionLayer&>(*layer).runs_stem();
    };
    auto layer = prepared(Backend::onednn, false, 2);
    EXPECT_EQ(runs_stem(layer), c.by_hand) << c.conv.name;
    const auto residual = testing::random_tensor(layer->dst_dims(), 4);
    const auto run = [&](const std::unique_ptr<Layer>& l) {
      Tensor out(l->dst_dims(), NAN);
      std::vector<const Tensor*> src{&input};
      if (c.residual) {
        src.push_back(&residual);
      }
      l->forward(src, out);
      return out;
    };
    const Tensor got = run(layer);
    EXPECT_LE(testing::relative_error(got, run(prepared(Backend::reference, false, 1))), 1e-5)
        << c.conv.name;
    const Tensor one_thread = run(prepared(Backend::onednn, false, 1));
    EXPECT_EQ(std::memcmp(got.data(), one_thread.data(), got.size() * sizeof(float)), 0)
        << c.conv.name;
    if (c.residual || c.relu) {
      continue;  // fused post-ops have no backward
    }
    EXPECT_FALSE(runs_stem(prepared(Backend::onednn, true, 2))) << c.conv.name;
    const testing::Avx2Kernels avx2;
    EXPECT_FALSE(runs_stem(prepared(Backend::onednn, false, 2))) << c.conv.name;
  }
}

TEST(Conv, ComputesAKnownSmallResult) {
  // A 2x2 kernel of ones with bias 1 over a 3x3 ramp: each output is the sum of a window + 1.
  const Tensor input({1, 1, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  WeightMap weights{{"layer.weight", Tensor({1, 1, 2, 2}, 1.0f)},
                    {"layer.bias", Tensor({1}, 1.0f)}};
  const nlohmann::json params{{"in_channels", 1}, {"out_channels", 1}, {"kernel_size", {2, 2}}};
  const auto dst =
      testing::run_one(Backend::onednn, LayerType::convolution, params, {input}, weights);
  EXPECT_EQ(std::vector<float>(dst.values().begin(), dst.values().end()),
            (std::vector<float>{9, 13, 21, 25}));
}

TEST(Conv, CountsTwoFlopsPerMultiplyAdd) {
  // 8 groups of 2 -> 4 channels, 3x3 kernel, 5x6 output, batch 2.
  auto conv = create_layer(LayerType::convolution, "c");
  conv->load_params({{"in_channels", 16},
                     {"out_channels", 32},
                     {"kernel_size", {3, 3}},
                     {"groups", 8},
                     {"padding", 1}});
  conv->load_weights(testing::random_weights(*conv, 1));
  const Context ctx(1);
  conv->prepare(ctx, {{2, 16, 5, 6}});
  EXPECT_EQ(conv->flops(), 2 * (2 * 32 * 5 * 6) * 2 * 9);
  auto up = create_layer(LayerType::transposed_convolution, "u");
  up->load_params(
      {{"in_channels", 8}, {"out_channels", 4}, {"kernel_size", {2, 2, 2}}, {"stride", 2}});
  up->load_weights(testing::random_weights(*up, 1));
  up->prepare(ctx, {{1, 8, 3, 3, 3}});
  EXPECT_EQ(up->flops(), 2 * (8 * 27) * 4 * 8);
}

// The thin convolutions' rows (1-2 input channels, output channels not in blocks of 8) by AVX-512
// give the AVX2 and FMA kernel's bytes: the same fused multiply-adds in the same order. Rows
// of 40 (32 and 8 under a mask), 17, 28 and 5; 1 to 7 output channels; stride 2 and padding.
TEST(Conv, ThinRowsByAvx512GiveTheAvx2Bytes) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<ConvCase> cases{
      {"LeNet1", {2, 1, 9, 44}, 6, {5, 5}, {1, 1}, {0, 0}, {1, 1}},
      {"Seven", {1, 2, 6, 19}, 7, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {"Strided", {1, 1, 9, 56}, 3, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {"Fifteen3d", {1, 1, 4, 5, 5}, 15, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
      {"One3d", {1, 2, 3, 4, 28}, 1, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}};
  for (const ConvCase& c : cases) {
    const auto input = testing::random_tensor(c.input, 3);
    auto layer = create_layer(LayerType::convolution, "layer");  // as run_one names it
    layer->load_params(conv_params(c));
    const WeightMap weights = testing::random_weights(*layer, 5);
    const auto wide =
        testing::run_one(Backend::onednn, LayerType::convolution, conv_params(c), {input}, weights);
    const auto narrow = [&] {
      const testing::Avx2Kernels avx2;
      return testing::run_one(Backend::onednn, LayerType::convolution, conv_params(c), {input},
                              weights);
    }();
    ASSERT_EQ(wide.dims(), narrow.dims()) << c.name;
    EXPECT_EQ(std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(float)), 0) << c.name;
  }
}

// Where the engine's AVX-512 kernels run, inference convolutions of up to 16 input channels into
// fewer than 16 run by thin rows (oneDNN's AVX-512 kernels waste half their vectors on 8): rows
// of 70, 100 and 45 (3 or 4 vectors an output channel, the last under a mask), 8 and 4 output
// channels at a time, 2D and 3D, stride 2, padding, batches of 2 and 3, a 1x1x1 head; within
// 1e-5 of the naive twin. More input channels, 16 output channels, the AVX2 kernels or training:
// oneDNN.
TEST(Conv, RunsFewOutputChannelsByThinRowsWhereAvx512Runs) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<std::pair<ConvCase, bool>> cases{
      {{"EightToEight3d", {1, 8, 5, 6, 70}, 8, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, true},
      {{"SixteenToTwelve3d", {1, 16, 4, 5, 100}, 12, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
       true},
      {{"Strided2d", {2, 16, 9, 50}, 5, {3, 3}, {2, 2}, {1, 1}, {1, 1}}, true},
      {{"Head3d", {1, 8, 3, 4, 45}, 12, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}}, true},
      // A thread's rows run from one image into the next, which shares their input rows' places.
      {{"BatchOfThree2d", {3, 8, 3, 40}, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, true},
      {{"ManyInputs", {1, 32, 5, 45}, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}}, false},
      {{"SixteenOutputs", {1, 8, 5, 45}, 16, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, false}};
  const Context ctx(2);
  for (const auto& [c, thin] : cases) {
    const auto input = testing::random_tensor(c.input, 3);
    const auto prepared = [&](bool training) {
      auto layer = create_layer(LayerType::convolution, "layer");
      layer->load_params(conv_params(c));
      layer->load_weights(testing::random_weights(*layer, 5));
      layer->set_training(training);
      layer->prepare(ctx, {c.input});
      return layer;
    };
    auto layer = prepared(false);
    EXPECT_EQ(dynamic_cast<const ConvolutionLayer&>(*layer).runs_thin_rows(), thin) << c.name;
    Tensor got(layer->dst_dims(), NAN);
    layer->forward({&input}, got);
    const auto expected =
        testing::run_one(Backend::reference, LayerType::convolution, conv_params(c), {input},
                         testing::random_weights(*layer, 5));
    EXPECT_LE(testing::relative_error(got, expected), 1e-5) << c.name;
    EXPECT_FALSE(dynamic_cast<const ConvolutionLayer&>(*prepared(true)).runs_thin_rows()) << c.name;
    const testing::Avx2Kernels avx2;
    EXPECT_FALSE(dynamic_cast<const ConvolutionLayer&>(*prepared(false)).runs_thin_rows())
        << c.name;
  }
}

// Each transposed convolution gives the same bytes on the engine's AVX-512 kernels as on their
// AVX2 twins, both within 1e-5 of the naive twin.
void expect_avx512_bytes_of_avx2(const std::vector<ConvCase>& cases) {
  for (const ConvCase& c : cases) {
    const auto input = testing::random_tensor(c.input, 3);
    auto layer = create_layer(LayerType::transposed_convolution, "layer");
    layer->load_params(conv_params(c));
    const WeightMap weights = testing::random_weights(*layer, 5);
    const auto run = [&] {
      return testing::run_one(Backend::onednn, LayerType::transposed_convolution, conv_params(c),
                              {input}, weights);
    };
    const auto wide = run();
    const auto narrow = [&] {
      const testing::Avx2Kernels avx2;
      return run();
    }();
    ASSERT_EQ(wide.dims(), narrow.dims()) << c.name;
    EXPECT_EQ(std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(float)), 0) << c.name;
    const auto expected = testing::run_one(Backend::reference, LayerType::transposed_convolution,
                                           conv_params(c), {input}, weights);
    EXPECT_LE(testing::relative_error(wide, expected), 1e-5) << c.name;
  }
}

// An up-convolution whose kernel equals its stride, by hand (detail::unpool_convolution), by
// AVX-512 gives the AVX2 kernel's bytes: the same products, each rounded, added in the same
// order. Rows of 37 (two vectors and 5 under a mask), 16 and 3; 8 output channels at a time and
// single ones; taps along W of 2 (interleaved by permutes), 1 and 3; 2D and 3D, batch 2. Both
// within 1e-5 of the naive twin.
TEST(TransposedConv, UnpoolByAvx512GivesTheAvx2Bytes) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<ConvCase> cases{
      {"SixteenToEight3d", {1, 16, 3, 4, 37}, 8, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
      {"ThirtyTwoToSixteen2d", {2, 32, 5, 16}, 16, {2, 2}, {2, 2}, {0, 0}, {1, 1}},
      {"EightToThree3d", {1, 8, 2, 3, 3}, 3, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
      {"OneTapAlongW3d", {1, 8, 3, 4, 21}, 8, {2, 2, 1}, {2, 2, 1}, {0, 0, 0}, {1, 1, 1}},
      {"ThreeTaps2d", {1, 8, 4, 19}, 11, {3, 3}, {3, 3}, {0, 0}, {1, 1}}};
  expect_avx512_bytes_of_avx2(cases);
}

// An up-convolution whose kernel equals its stride, by hand: its input's dims, output channels,
// kernel and whether it has a bias.
struct UnpoolCase {
  Dims input;
  std::int64_t out_channels;
  Dims kernel;
  bool bias;
};

// Its output's dims and its kernel's taps.
std::pair<Dims, std::int64_t> unpool_output(const UnpoolCase& c) {
  Dims out{c.input[0], c.out_channels};
  std::int64_t taps = 1;
  for (std::size_t a = 0; a < c.kernel.size(); ++a) {
    taps *= c.kernel[a];
    out.push_back(c.input[a + 2] * c.kernel[a]);
  }
  return {out, taps};
}

// The same up-convolution by hand into blocks of 16 output channels
// (detail::unpool_convolution_blocked, for a concat's blocked layout in training) gives the bytes
// of the plain kernel, value for value: 16 and 32 output channels (two blocks), batch 2, widths
// odd (a last voxel alone) and even, 8 taps (2x2x2), 6 (3x2x1), 18 (2x3x3: two groups of 8 and
// 2), 4 and 9 in 2D, with and without bias.
TEST(TransposedConv, UnpoolIntoBlocksGivesThePlainKernelsBytes) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<UnpoolCase> cases{
      {{2, 32, 3, 4, 5}, 16, {2, 2, 2}, true}, {{1, 8, 2, 3, 4}, 32, {2, 2, 2}, false},
      {{2, 5, 2, 2, 3}, 16, {3, 2, 1}, true},  {{1, 4, 2, 3, 2}, 16, {2, 3, 3}, true},
      {{2, 16, 5, 7}, 16, {2, 2}, false},      {{1, 3, 4, 3}, 32, {3, 3}, true}};
  for (const auto& c : cases) {
    const auto x = testing::random_tensor(c.input, 7);
    const auto [out, taps] = unpool_output(c);
    const auto weights = testing::random_tensor({c.input[1], c.out_channels, taps}, 8);
    const auto bias = testing::random_tensor({c.out_channels}, 9);
    const float* b = c.bias ? bias.data() : nullptr;
    Tensor plain(out, NAN);
    detail::unpool_convolution(x, weights.data(), b, plain, c.kernel, 2);
    Tensor blocked(out, NAN);
    detail::unpool_convolution_blocked(x, weights.data(), b, blocked, c.kernel, 2);
    const std::int64_t spatial = plain.size() / (out[0] * out[1]);
    std::int64_t differing = 0;
    for (std::int64_t i = 0; i < plain.size(); ++i) {
      const std::int64_t n = i / (out[1] * spatial);
      const std::int64_t ch = i / spatial % out[1];
      const std::int64_t at = ((n * out[1] / 16 + ch / 16) * spatial + i % spatial) * 16 + ch % 16;
      differing += std::memcmp(&plain.data()[i], &blocked.data()[at], sizeof(float)) != 0;
    }
    EXPECT_EQ(differing, 0) << to_string(c.input) << " -> " << c.out_channels;
  }
}

// The gradients of that up-convolution from its output's gradient in blocks of 16
// (detail::unpool_backward_blocked) against sums in double of the plain layout's values: 16
// and 32 output channels (two blocks), 5 and 40 inputs (groups of 4 and one left; two blocks of
// 16 channels at a time, the last padded), 8 taps in 3D and 9 in 2D, two samples, with and
// without bias; the same bytes on 1 and 2 threads.
TEST(TransposedConv, UnpoolGradientsOnBlocksMatchNaiveSums) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<UnpoolCase> cases{{{2, 5, 2, 3, 6}, 16, {2, 2, 2}, true},
                                      {{1, 40, 3, 2, 5}, 32, {2, 2, 2}, false},
                                      {{2, 3, 4, 7}, 32, {3, 3}, true}};
  for (const auto& c : cases) {
    const auto x = testing::random_tensor(c.input, 11);
    const auto [out, taps] = unpool_output(c);
    const auto weights = testing::random_tensor({c.input[1], c.out_channels, taps}, 12);
    const auto diff_dst = testing::random_tensor(out, 13);  // plain
    const std::int64_t batch = out[0];
    const std::int64_t ic_count = c.input[1];
    const std::int64_t in_plane = x.size() / (batch * ic_count);
    const std::int64_t out_plane = diff_dst.size() / (batch * c.out_channels);
    // The blocked copy, and each (input voxel, tap)'s output voxel.
    std::vector<float> blocks(static_cast<std::size_t>(diff_dst.size()));
    for (std::int64_t i = 0; i < diff_dst.size(); ++i) {
      const std::int64_t n = i / (c.out_channels * out_plane);
      const std::int64_t oc = i / out_plane % c.out_channels;
      blocks[static_cast<std::size_t>(
          ((n * c.out_channels / 16 + oc / 16) * out_plane + i % out_plane) * 16 + oc % 16)] =
          diff_dst.data()[i];
    }
    const auto output_voxel = [&](std::int64_t v, std::int64_t t) {
      const auto rank = c.kernel.size();
      std::int64_t index = 0;
      std::int64_t rest_v = v;
      std::int64_t rest_t = t;
      Dims at(rank);
      for (std::size_t a = rank; a-- > 0;) {
        const std::int64_t size = c.input[a + 2];
        at[a] = rest_v % size * c.kernel[a] + rest_t % c.kernel[a];
        rest_v /= size;
        rest_t /= c.kernel[a];
      }
      for (std::size_t a = 0; a < rank; ++a)
        index = index * c.input[a + 2] * c.kernel[a] + at[a];
      return index;
    };
    std::vector<double> dx(static_cast<std::size_t>(x.size())), dw(weights.values().size()),
        db(static_cast<std::size_t>(c.out_channels));
    for (std::int64_t n = 0; n < batch; ++n) {
      for (std::int64_t ic = 0; ic < ic_count; ++ic) {
        for (std::int64_t v = 0; v < in_plane; ++v) {
          for (std::int64_t oc = 0; oc < c.out_channels; ++oc) {
            for (std::int64_t t = 0; t < taps; ++t) {
              const double g =
                  diff_dst.data()[(n * c.out_channels + oc) * out_plane + output_voxel(v, t)];
              const auto w = static_cast<std::size_t>((ic * c.out_channels + oc) * taps + t);
              dx[static_cast<std::size_t>((n * ic_count + ic) * in_plane + v)] +=
                  weights.values()[w] * g;
              dw[w] += x.data()[(n * ic_count + ic) * in_plane + v] * g;
              if (ic == 0)
                db[static_cast<std::size_t>(oc)] += g;
            }
          }
        }
      }
    }
    std::map<int, std::vector<float>> bytes;
    for (const int threads : {2, 1}) {
      Tensor got_dx(c.input, NAN);
      std::vector<float> got_dw(dw.size(), 0.5f);  // added to
      std::vector<float> got_db(db.size(), 0.25f);
      detail::unpool_backward_blocked(x, blocks.data(), weights.data(), &got_dx, got_dw.data(),
                                      c.bias ? got_db.data() : nullptr, c.out_channels, c.kernel,
                                      threads);
      const auto worst = [](const auto& got, const std::vector<double>& want, double offset) {
        double error = 0.0;
        double scale = 0.0;
        for (std::size_t i = 0; i < want.size(); ++i) {
          error = std::max(error, std::abs(double{got[i]} - offset - want[i]));
          scale = std::max(scale, std::abs(want[i]));
        }
        return error / scale;
      };
      EXPECT_LE(worst(got_dx.values(), dx, 0.0), 1e-5) << to_string(c.input);
      EXPECT_LE(worst(got_dw, dw, 0.5), 1e-5) << to_string(c.input);
      if (c.bias) {
        EXPECT_LE(worst(got_db, db, 0.25), 1e-5) << to_string(c.input);
      } else {
        EXPECT_EQ(got_db, std::vector<float>(db.size(), 0.25f));
      }
      auto& all = bytes[threads];
      all.insert(all.end(), got_dx.values().begin(), got_dx.values().end());
      all.insert(all.end(), got_dw.begin(), got_dw.end());
      all.insert(all.end(), got_db.begin(), got_db.end());
    }
    EXPECT_EQ(std::memcmp(bytes[1].data(), bytes[2].data(), bytes[1].size() * sizeof(float)), 0)
        << to_string(c.input);
  }
}

// In training an up-convolution whose kernel equals its stride runs its forward by hand into at
// most 16 channels, and into more in whole blocks of 16 where the AVX-512 kernels run (so that its
// blocked twin can write a linked concat's blocks); within 1e-5 of the naive twin either way.
TEST(TransposedConv, TrainsUnpoolingByHandIntoWholeBlocksWhereAvx512Runs) {
  const std::vector<std::pair<ConvCase, bool>> cases{
      {{"SixteenToThirtyTwo3d", {2, 16, 3, 4, 5}, 32, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
       true},
      {{"EightToSixtyFour2d", {1, 8, 5, 6}, 64, {2, 2}, {2, 2}, {0, 0}, {1, 1}}, true},
      {{"EightToTwentyFour3d", {1, 8, 2, 3, 4}, 24, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
       false},
      {{"EightToSixteen3d", {1, 8, 2, 3, 4}, 16, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
       true}};
  for (const auto& [c, blocks] : cases) {
    const auto input = testing::random_tensor(c.input, 3);
    auto layer = create_layer(LayerType::transposed_convolution, "layer");
    layer->load_params(conv_params(c));
    const auto weights = testing::random_weights(*layer, 5);
    layer->load_weights(weights);
    layer->set_training(true);
    layer->prepare(Context(2), {c.input});
    const bool by_hand = c.out_channels <= 16 || (blocks && detail::avx512_kernels());
    EXPECT_EQ(dynamic_cast<const ConvolutionLayer&>(*layer).runs_unpool(), by_hand) << c.name;
    Tensor got(layer->dst_dims(), NAN);
    layer->forward({&input}, got);
    const auto expected = testing::run_one(Backend::reference, LayerType::transposed_convolution,
                                           conv_params(c), {input}, weights);
    EXPECT_LE(testing::relative_error(got, expected), 1e-5) << c.name;
  }
}

// Where the engine's AVX-512 kernels run, an inference transposed convolution that doubles every
// size with a 3-tap kernel (stride 2, padding 1, output padding 1: MONAI's) into at most 8
// channels runs by hand (detail::doubling_convolution): rows of 37 (two vectors and 5 under a
// mask), 16 (the shifted columns one fewer) and 3; output channels two at a time and a single
// one; 2D and 3D, batch 2, without bias; within 1e-5 of the naive twin, the same bytes on 1 and 2
// threads. More output channels, no output padding, training or the AVX2 kernels: oneDNN.
TEST(TransposedConv, DoublesFewChannelsByHandWhereAvx512Runs) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const auto doubling = [](std::string name, Dims input, std::int64_t out_channels,
                           bool bias = true) {
    const auto rank = input.size() - 2;
    return ConvCase{std::move(name),
                    std::move(input),
                    out_channels,
                    Dims(rank, 3),
                    Dims(rank, 2),
                    Dims(rank, 1),
                    Dims(rank, 1),
                    1,
                    bias,
                    Dims(rank, 1)};
  };
  ConvCase odd_sizes = doubling("NoOutputPadding3d", {1, 8, 3, 4, 5}, 2);
  odd_sizes.output_padding = {0, 0, 0};
  const std::vector<std::pair<ConvCase, bool>> cases{
      {doubling("ThirtyTwoToTwo3d", {1, 32, 3, 4, 37}, 2), true},
      {doubling("EightToThree2d", {2, 8, 5, 16}, 3), true},
      {doubling("FiveToOne3d", {2, 5, 2, 3, 3}, 1, false), true},
      {doubling("FourToEight2d", {1, 4, 3, 20}, 8), true},
      {doubling("NineOutputs3d", {1, 8, 2, 3, 20}, 9), false},
      {odd_sizes, false}};
  for (const auto& [c, by_hand] : cases) {
    const auto input = testing::random_tensor(c.input, 3);
    const auto prepared = [&](bool training, int threads) {
      auto layer = create_layer(LayerType::transposed_convolution, "layer");
      layer->load_params(conv_params(c));
      layer->load_weights(testing::random_weights(*layer, 5));
      layer->set_training(training);
      layer->prepare(Context(threads), {c.input});
      return layer;
    };
    const auto runs_doubling = [](const std::unique_ptr<Layer>& layer) {
      return dynamic_cast<const ConvolutionLayer&>(*layer).runs_doubling();
    };
    auto layer = prepared(false, 2);
    EXPECT_EQ(runs_doubling(layer), by_hand) << c.name;
    Tensor got(layer->dst_dims(), NAN);
    layer->forward({&input}, got);
    const auto expected =
        testing::run_one(Backend::reference, LayerType::transposed_convolution, conv_params(c),
                         {input}, testing::random_weights(*layer, 5));
    ASSERT_EQ(got.dims(), expected.dims()) << c.name;
    EXPECT_LE(testing::relative_error(got, expected), 1e-5) << c.name;
    auto single = prepared(false, 1);
    Tensor one_thread(single->dst_dims(), NAN);
    single->forward({&input}, one_thread);
    EXPECT_EQ(std::memcmp(got.data(), one_thread.data(), got.size() * sizeof(float)), 0) << c.name;
    EXPECT_FALSE(runs_doubling(prepared(true, 2))) << c.name;
    const testing::Avx2Kernels avx2;
    EXPECT_FALSE(runs_doubling(prepared(false, 2))) << c.name;
  }
}

// The sub-pixel phases of a transposed convolution into whole blocks of 16 channels, interleaved
// into PyTorch's layout by 16 x 16 transposes where the engine's AVX-512 kernels run, give the
// bytes of the interleave value by value: 13 samples a row (8 by a transpose, 5 one by one), 16
// and 3; 3-tap and 2-tap kernels; 2D and 3D, batch 2. Both within 1e-5 of the naive twin.
TEST(TransposedConv, InterleavesPhasesByTransposesAsValueByValue) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const std::vector<ConvCase> cases{
      {"ThreeTaps3d",
       {2, 8, 3, 2, 13},
       16,
       {3, 3, 3},
       {2, 2, 2},
       {1, 1, 1},
       {1, 1, 1},
       1,
       true,
       {1, 1, 1}},
      {"ThreeTaps2d", {1, 16, 5, 16}, 32, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, true, {1, 1}},
      {"TwoTaps3d", {2, 8, 2, 3, 3}, 32, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
      {"TwoTaps2d", {1, 4, 6, 13}, 48, {2, 2}, {2, 2}, {0, 0}, {1, 1}}};
  expect_avx512_bytes_of_avx2(cases);
}

TEST(Conv, RejectsInputWithOtherChannelCount) {
  const nlohmann::json params{{"in_channels", 3}, {"out_channels", 4}, {"kernel_size", {3, 3}}};
  EXPECT_THROW(run_both(LayerType::convolution, params, {{1, 2, 8, 8}}), Error);
}

TEST(Conv, RejectsAKernelLargerThanThePaddedInput) {
  const nlohmann::json params{{"in_channels", 1}, {"out_channels", 1}, {"kernel_size", {5, 5}}};
  EXPECT_THROW(run_both(LayerType::convolution, params, {{1, 1, 4, 9}}), Error);
}

TEST(Conv, RejectsGroupsThatDoNotDivideTheChannels) {
  auto conv = create_layer(LayerType::convolution, "c");
  EXPECT_THROW(
      conv->load_params(
          {{"in_channels", 4}, {"out_channels", 6}, {"kernel_size", {3, 3}}, {"groups", 4}}),
      Error);
}

}  // namespace
}  // namespace cajal::engine
