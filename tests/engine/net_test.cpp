#include "engine/net.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "core/error.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layer_type.h"
#include "engine/layers/common.h"
#include "engine/layers/convolution.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

using testing::NodeDef;
using testing::weights_for;

Net make_net(const std::vector<NodeDef>& defs, Backend backend, NetOptions options = {},
             std::vector<std::string> outputs = {}) {
  std::vector<Node> nodes = testing::make_nodes(defs, backend);
  if (outputs.empty()) {
    outputs = {defs.back().output};
  }
  return Net({"x"}, std::move(nodes), outputs, options);
}

// A small 3D residual block with a U-Net-like tail: conv-bn-relu, conv-bn, add, prelu, pool,
// transposed conv, concat, 1x1 head, softmax.
std::vector<NodeDef> residual_block() {
  const nlohmann::json conv{
      {"in_channels", 4}, {"out_channels", 4}, {"kernel_size", {3, 3, 3}}, {"padding", 1}};
  return {
      {LayerType::convolution, "c1", conv, {"x"}, "c1"},
      {LayerType::batch_norm, "bn1", {{"num_features", 4}}, {"c1"}, "bn1"},
      {LayerType::relu, "r1", nlohmann::json::object(), {"bn1"}, "r1"},
      {LayerType::convolution, "c2", conv, {"r1"}, "c2"},
      {LayerType::batch_norm, "bn2", {{"num_features", 4}}, {"c2"}, "bn2"},
      {LayerType::add, "sum", nlohmann::json::object(), {"bn2", "x"}, "sum"},
      {LayerType::prelu, "act", {{"num_parameters", 4}}, {"sum"}, "act"},
      {LayerType::max_pool, "pool", {{"kernel_size", {2, 2, 2}}}, {"act"}, "pool"},
      {LayerType::transposed_convolution,
       "up",
       {{"in_channels", 4}, {"out_channels", 4}, {"kernel_size", {2, 2, 2}}, {"stride", 2}},
       {"pool"},
       "up"},
      {LayerType::concat, "cat", nlohmann::json::object(), {"up", "act"}, "cat"},
      {LayerType::convolution,
       "head",
       {{"in_channels", 8}, {"out_channels", 3}, {"kernel_size", {1, 1, 1}}},
       {"cat"},
       "head"},
      {LayerType::softmax, "prob", nlohmann::json::object(), {"head"}, "prob"},
  };
}

Tensor run(Net& net, const WeightMap& weights, const Tensor& input, int threads = 2) {
  const Context ctx(threads);
  net.load_weights(weights);
  net.prepare(ctx, {{"x", input.dims()}});
  return net.forward({{"x", input}}).at(net.outputs()[0]);
}

TEST(Net, FoldedAndFusedMatchesReferenceLayerByLayer) {
  const auto defs = residual_block();
  const auto weights = weights_for(defs);
  const auto input = testing::random_tensor({1, 4, 6, 4, 6}, 1);
  auto fast = make_net(defs, Backend::onednn);
  auto naive = make_net(defs, Backend::reference, {false, false});
  const auto got = run(fast, weights, input);
  const auto expected = run(naive, weights, input);
  EXPECT_EQ(got.dims(), (Dims{1, 3, 6, 4, 6}));
  EXPECT_LE(testing::relative_error(got, expected), 1e-4);
  // bn1 and r1 went into c1, bn2 and sum into c2.
  EXPECT_EQ(fast.nodes().size(), defs.size() - 4);
  EXPECT_EQ(naive.nodes().size(), defs.size());
}

TEST(Net, FoldsBatchNormAndFusesEluIntoATransposedConvolution) {
  const std::vector<NodeDef> defs{
      {LayerType::transposed_convolution,
       "up",
       {{"in_channels", 6},
        {"out_channels", 4},
        {"kernel_size", {3, 3}},
        {"stride", 2},
        {"padding", 1},
        {"output_padding", 1},
        {"groups", 2},
        {"bias", false}},
       {"x"},
       "up"},
      {LayerType::batch_norm, "bn", {{"num_features", 4}}, {"up"}, "bn"},
      {LayerType::elu, "act", {{"alpha", 0.5}}, {"bn"}, "act"}};
  const auto weights = weights_for(defs);
  const auto input = testing::random_tensor({2, 6, 5, 7}, 4);
  auto fast = make_net(defs, Backend::onednn);
  auto naive = make_net(defs, Backend::reference, {false, false});
  const auto got = run(fast, weights, input);
  EXPECT_EQ(fast.nodes().size(), 1u);
  EXPECT_LE(testing::relative_error(got, run(naive, weights, input)), 1e-4);
}

// A thin convolution (1-2 input channels) takes in the tanh and the pooling after it when the
// pooling's windows tile its output: LeNet-5's c1, tanh, s2. The same bytes as the three layers
// one after another, and within 1e-4 of the naive twins (which pool the same way when fused).
TEST(Net, ThinConvolutionTakesInTheTanhAndTheTilingPoolAfterIt) {
  struct Case {
    Dims input;
    nlohmann::json conv;
    LayerType pool;
    Dims window;
    bool tanh;
    Dims output;
  };
  const std::vector<Case> cases{
      // LeNet-5's first layers on a batch of 3.
      {{3, 1, 32, 32},
       {{"in_channels", 1}, {"out_channels", 6}, {"kernel_size", {5, 5}}},
       LayerType::avg_pool,
       {2, 2},
       true,
       {3, 6, 14, 14}},
      // Stride 2 and padding: a 9 x 11 output pooled 2 x 3 into 4 x 3 (the last row and columns
      // of the convolution's output dropped, as PyTorch's floor mode does).
      {{2, 2, 17, 21},
       {{"in_channels", 2},
        {"out_channels", 5},
        {"kernel_size", {3, 3}},
        {"stride", 2},
        {"padding", 1}},
       LayerType::max_pool,
       {2, 3},
       false,
       {2, 5, 4, 3}},
      {{1, 1, 6, 9, 10},
       {{"in_channels", 1}, {"out_channels", 3}, {"kernel_size", {3, 3, 3}}, {"padding", 1}},
       LayerType::avg_pool,
       {2, 2, 2},
       true,
       {1, 3, 3, 4, 5}},
  };
  for (const Case& c : cases) {
    std::vector<NodeDef> defs{{LayerType::convolution, "c1", c.conv, {"x"}, "c1"}};
    if (c.tanh) {
      defs.push_back({LayerType::tanh, "t1", nlohmann::json::object(), {"c1"}, "t1"});
    }
    defs.push_back({c.pool, "s2", {{"kernel_size", c.window}}, {defs.back().output}, "s2"});
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(c.input, 3);
    auto fused = make_net(defs, Backend::onednn);
    auto apart = make_net(defs, Backend::onednn, {false, false});
    auto naive = make_net(defs, Backend::reference);
    const auto got = run(fused, weights, input);
    const auto expected = run(apart, weights, input);
    EXPECT_EQ(fused.nodes().size(), 1u) << to_string(c.input);
    EXPECT_EQ(apart.nodes().size(), defs.size());
    ASSERT_EQ(got.dims(), c.output);
    ASSERT_EQ(expected.dims(), c.output);
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0)
        << to_string(c.input);
    EXPECT_LE(testing::relative_error(run(naive, weights, input), expected), 1e-4);
    EXPECT_EQ(naive.nodes().size(), 1u);
    // The convolution's FLOPs, not the pooled output's.
    EXPECT_EQ(fused.nodes()[0].layer->flops(), apart.nodes()[0].layer->flops());
  }
}

// The pooling stays a layer of its own where it cannot be taken in: after a relu, with windows
// that overlap (stride below the kernel), or after a convolution oneDNN runs (8 output channels).
TEST(Net, KeepsThePoolingApartWhereTheConvolutionCannotTakeItIn) {
  const nlohmann::json thin{{"in_channels", 1}, {"out_channels", 6}, {"kernel_size", {3, 3}}};
  const nlohmann::json blocked{{"in_channels", 1}, {"out_channels", 8}, {"kernel_size", {3, 3}}};
  const nlohmann::json tiles{{"kernel_size", {2, 2}}};
  const nlohmann::json overlaps{{"kernel_size", {3, 3}}, {"stride", 2}};
  const std::vector<std::vector<NodeDef>> nets{
      {{LayerType::convolution, "c", thin, {"x"}, "c"},
       {LayerType::relu, "r", nlohmann::json::object(), {"c"}, "r"},
       {LayerType::max_pool, "p", tiles, {"r"}, "p"}},
      {{LayerType::convolution, "c", thin, {"x"}, "c"},
       {LayerType::max_pool, "p", overlaps, {"c"}, "p"}},
      {{LayerType::convolution, "c", blocked, {"x"}, "c"},
       {LayerType::avg_pool, "p", tiles, {"c"}, "p"}}};
  for (const auto& defs : nets) {
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor({2, 1, 11, 12}, 4);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    const auto got = run(fast, weights, input);
    EXPECT_EQ(fast.nodes().size(), 2u) << defs[1].name;
    EXPECT_LE(testing::relative_error(got, run(naive, weights, input)), 1e-4);
  }
}

// A convolution run by thin rows of 8 input channels (where AVX-512 runs) takes in the relu,
// leaky relu or tanh after it and applies it to each row as it is made: within 1e-5 of the
// naive twins apart (the bundled CT model's full-resolution layers).
TEST(Net, ThinRowsOfEightChannelsTakeInTheirActivation) {
  const nlohmann::json conv{
      {"in_channels", 8}, {"out_channels", 8}, {"kernel_size", {3, 3, 3}}, {"padding", {1, 1, 1}}};
  const std::vector<NodeDef> activations{
      {LayerType::relu, "a", nlohmann::json::object(), {"c"}, "a"},
      {LayerType::leaky_relu, "a", {{"negative_slope", 0.2}}, {"c"}, "a"},
      {LayerType::tanh, "a", nlohmann::json::object(), {"c"}, "a"}};
  for (const NodeDef& activation : activations) {
    const std::vector<NodeDef> defs{{LayerType::convolution, "c", conv, {"x"}, "c"}, activation};
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor({1, 8, 5, 6, 40}, 15, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    const auto got = run(fast, weights, input);
    EXPECT_EQ(fast.nodes().size(), 1u) << activation.name << " " << activation.params.dump();
    EXPECT_EQ(dynamic_cast<const ConvolutionLayer&>(*fast.nodes()[0].layer).runs_thin_rows(),
              detail::avx512_kernels());
    EXPECT_LE(testing::relative_error(got, run(naive, weights, input)), 1e-5)
        << activation.name << " " << activation.params.dump();
  }
}

// An instance or group norm takes in the relu, leaky relu or PReLU after it (the MONAI UNet's
// instance norm and PReLU, nnU-Net's instance norm and leaky ReLU) and runs by hand: within 1e-4
// of the naive twins apart, and the naive twins fused give what they give apart.
TEST(Net, InstanceAndGroupNormTakeInTheActivationAfterThem) {
  const std::vector<std::vector<NodeDef>> nets{
      {{LayerType::instance_norm, "n", {{"num_features", 4}}, {"x"}, "n"},
       {LayerType::prelu, "a", {{"num_parameters", 1}}, {"n"}, "a"}},
      {{LayerType::instance_norm, "n", {{"num_features", 4}, {"affine", true}}, {"x"}, "n"},
       {LayerType::prelu, "a", {{"num_parameters", 4}}, {"n"}, "a"}},
      {{LayerType::group_norm, "n", {{"num_groups", 2}, {"num_channels", 4}}, {"x"}, "n"},
       {LayerType::leaky_relu, "a", {{"negative_slope", 0.1}}, {"n"}, "a"}},
      {{LayerType::instance_norm, "n", {{"num_features", 4}}, {"x"}, "n"},
       {LayerType::relu, "a", nlohmann::json::object(), {"n"}, "a"}}};
  for (const auto& defs : nets) {
    const auto weights = weights_for(defs);
    for (const Dims& dims : {Dims{2, 4, 5, 7}, Dims{1, 4, 3, 6, 5}}) {
      const auto input = testing::random_tensor(dims, 5, -3.0f, 2.0f);
      auto fused = make_net(defs, Backend::onednn);
      auto naive = make_net(defs, Backend::reference, {false, false});
      auto naive_fused = make_net(defs, Backend::reference);
      const auto got = run(fused, weights, input);
      const auto expected = run(naive, weights, input);
      EXPECT_EQ(fused.nodes().size(), 1u) << defs[1].name << " " << to_string(dims);
      EXPECT_LE(testing::relative_error(got, expected), 1e-4) << to_string(dims);
      EXPECT_LE(testing::relative_error(run(naive_fused, weights, input), expected), 1e-6);
      EXPECT_EQ(naive_fused.nodes().size(), 1u);
    }
  }
}

// No fusion where the norm's output is read elsewhere too, or for a batch norm on its own.
TEST(Net, KeepsTheActivationApartWhereTheNormCannotTakeItIn) {
  const std::vector<std::vector<NodeDef>> nets{
      {{LayerType::instance_norm, "n", {{"num_features", 3}}, {"x"}, "n"},
       {LayerType::relu, "a", nlohmann::json::object(), {"n"}, "a"},
       {LayerType::add, "sum", nlohmann::json::object(), {"a", "n"}, "sum"}},
      {{LayerType::batch_norm, "n", {{"num_features", 3}}, {"x"}, "n"},
       {LayerType::relu, "a", nlohmann::json::object(), {"n"}, "a"}}};
  for (const auto& defs : nets) {
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor({2, 3, 4, 5}, 6, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    const auto got = run(fast, weights, input);
    EXPECT_EQ(fast.nodes().size(), defs.size()) << defs[0].name;
    EXPECT_LE(testing::relative_error(got, run(naive, weights, input)), 1e-4);
  }
}

TEST(Net, SameInputAndThreadsGiveTheSameBytes) {
  const auto defs = residual_block();
  const auto weights = weights_for(defs);
  const auto input = testing::random_tensor({1, 4, 8, 8, 8}, 2);
  auto first = make_net(defs, Backend::onednn);
  auto second = make_net(defs, Backend::onednn);
  const auto a = run(first, weights, input);
  const auto b = run(second, weights, input);
  const auto again = first.forward({{"x", input}}).at("prob");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()), 0);
  EXPECT_EQ(std::memcmp(a.data(), again.data(), sizeof(float) * a.size()), 0);
}

TEST(Net, ReusesBuffersOfBlobsNoLongerRead) {
  std::vector<NodeDef> chain;
  std::string previous = "x";
  for (int i = 0; i < 6; ++i) {
    const auto name = "a" + std::to_string(i);
    chain.push_back({LayerType::tanh, name, nlohmann::json::object(), {previous}, name});
    previous = name;
  }
  auto net = make_net(chain, Backend::onednn);
  const auto input = testing::random_tensor({1, 2, 10, 10}, 3);
  const auto out = run(net, {}, input);
  // Six activations of 200 floats live two at a time.
  EXPECT_EQ(net.activation_bytes(), 2 * 200 * 4);
  EXPECT_EQ(out.dims(), input.dims());
}

// When several free buffers hold a blob, the planner takes the one that holds it most closely and
// keeps the large one for a large blob later: f (100 floats) may take the 1000-float buffer that
// d left or the 100-float one that c left; in the first, g (1000) would have to grow the other.
TEST(Net, PlansEachBlobIntoTheFreeBufferThatFitsItMostClosely) {
  const auto conv = [](std::int64_t in, std::int64_t out) {
    return nlohmann::json{{"in_channels", in}, {"out_channels", out}, {"kernel_size", {1, 1}}};
  };
  const auto none = nlohmann::json::object();
  const std::vector<NodeDef> defs{
      {LayerType::convolution, "a", conv(1, 10), {"x"}, "a"},  // 1000 floats: buffer 0
      {LayerType::tanh, "b", none, {"x"}, "b"},                // 100: buffer 1
      {LayerType::convolution, "c", conv(10, 1), {"a"}, "c"},  // 100: buffer 2; a's 0 is free
      {LayerType::add, "d", none, {"b", "c"}, "d"},            // 100: 0; 1 and 2 are free
      {LayerType::tanh, "e", none, {"d"}, "e"},                // 100: 1; 0 and 2 are free
      {LayerType::tanh, "f", none, {"e"}, "f"},                // 100: 2, not 0; 0 and 1 free
      {LayerType::convolution, "g", conv(1, 10), {"f"}, "g"},  // 1000: 0
  };
  auto net = make_net(defs, Backend::onednn, NetOptions::for_training());
  const auto input = testing::random_tensor({1, 1, 10, 10}, 5);
  const auto out = run(net, weights_for(defs), input);
  EXPECT_EQ(net.activation_bytes(), (1000 + 100 + 100) * 4);
  EXPECT_EQ(out.dims(), (Dims{1, 10, 10, 10}));
}

TEST(Net, RejectsAnExtraTensor) {
  const auto defs = residual_block();
  auto weights = weights_for(defs);
  weights["c1.running_mean"] = Tensor({4});
  auto net = make_net(defs, Backend::onednn);
  try {
    net.load_weights(weights);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'c1.running_mean'"), std::string::npos);
  }
}

TEST(Net, RejectsAnInputBlobNoLayerWrote) {
  EXPECT_THROW(
      make_net({{LayerType::relu, "r", nlohmann::json::object(), {"y"}, "r"}}, Backend::onednn),
      Error);
}

TEST(Net, RejectsABlobWrittenTwice) {
  EXPECT_THROW(make_net({{LayerType::relu, "r", nlohmann::json::object(), {"x"}, "r"},
                         {LayerType::relu, "s", nlohmann::json::object(), {"r"}, "r"}},
                        Backend::onednn),
               Error);
}

TEST(Net, RejectsAnInputOfOtherDimsThanPrepared) {
  auto net =
      make_net({{LayerType::relu, "r", nlohmann::json::object(), {"x"}, "r"}}, Backend::onednn);
  run(net, {}, Tensor({1, 1, 4, 4}));
  EXPECT_THROW(net.forward({{"x", Tensor({1, 1, 4, 5})}}), Error);
}

TEST(Net, KeepsABatchNormWhoseInputIsAlsoAnOutput) {
  const auto defs =
      std::vector<NodeDef>{{LayerType::convolution,
                            "c",
                            {{"in_channels", 1}, {"out_channels", 2}, {"kernel_size", {3, 3}}},
                            {"x"},
                            "c"},
                           {LayerType::batch_norm, "bn", {{"num_features", 2}}, {"c"}, "bn"}};
  auto net = make_net(defs, Backend::onednn, {}, {"c", "bn"});
  net.load_weights(weights_for(defs));
  EXPECT_EQ(net.nodes().size(), 2u);
}

// x [1,1,16,16] -> a (tanh, 256 floats) -> p (pool, 64) -> u (upsample, 256) -> c = [a, u] (512)
// -> t (tanh, 512): the planner's slots hold 512 + 512 + 256 floats, while at most 1024 are live
// (a, u and c at the concat; c and t at the last tanh).
std::vector<NodeDef> small_u() {
  const auto none = nlohmann::json::object();
  return {
      {LayerType::tanh, "a", none, {"x"}, "a"},
      {LayerType::max_pool, "p", {{"kernel_size", {2, 2}}}, {"a"}, "p"},
      {LayerType::upsample, "u", {{"scale_factor", {2, 2}}}, {"p"}, "u"},
      {LayerType::concat, "c", none, {"a", "u"}, "c"},
      {LayerType::tanh, "t", none, {"c"}, "t"},
  };
}

TEST(Net, FreesBuffersAfterTheirLastReaderAndMovesTheOutputOut) {
  const auto input = testing::random_tensor({1, 1, 16, 16}, 5);
  auto kept = make_net(small_u(), Backend::onednn,
                       {.release_bytes = std::numeric_limits<std::int64_t>::max()});
  auto freed = make_net(small_u(), Backend::onednn, {.release_bytes = 0});
  const auto a = run(kept, {}, input);
  const auto b = run(freed, {}, input);
  // Batch 1: "a" and "u" are written straight into the concat's 512 floats (taken when "a"
  // runs), "p" takes 64 and "t" 512 (p's buffer, grown: c's is still read by t).
  EXPECT_EQ(kept.activation_bytes(), 1024 * 4);
  EXPECT_EQ(freed.activation_bytes(), 1024 * 4);
  EXPECT_EQ(kept.peak_bytes(), 1024 * 4);
  EXPECT_EQ(freed.peak_bytes(), 1024 * 4);
  // The output's buffer went out with it; the others stay (kept) or were freed.
  EXPECT_EQ(kept.resident_bytes(), 512 * 4);
  EXPECT_EQ(freed.resident_bytes(), 0);
  ASSERT_EQ(a.dims(), (Dims{1, 2, 16, 16}));
  ASSERT_EQ(b.dims(), a.dims());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()), 0);
  const auto again = freed.forward({{"x", input}}).at("t");
  EXPECT_EQ(std::memcmp(a.data(), again.data(), sizeof(float) * a.size()), 0);
}

// Channels in whole blocks of 8: c1 (relu fused) hands its blocked output straight to c2 and c2
// to c3 (which adds x), without the reorders to PyTorch's layout and back; the values are the
// naive twin's, in 2D and 3D, batch 1 and 2.
TEST(Net, ConvolutionsPassTheirBlockedLayoutAlongAChain) {
  for (const Dims& dims : {Dims{1, 8, 13, 11}, Dims{2, 8, 5, 6, 7}}) {
    const auto rank = static_cast<std::int64_t>(dims.size()) - 2;
    const auto conv = [&](int in, int out) {
      return nlohmann::json{{"in_channels", in},
                            {"out_channels", out},
                            {"kernel_size", Dims(static_cast<std::size_t>(rank), 3)},
                            {"padding", 1}};
    };
    const std::vector<NodeDef> defs{
        {LayerType::convolution, "c1", conv(8, 16), {"x"}, "c1"},
        {LayerType::relu, "r1", nlohmann::json::object(), {"c1"}, "r1"},
        {LayerType::convolution, "c2", conv(16, 16), {"r1"}, "c2"},
        {LayerType::convolution, "c3", conv(16, 8), {"c2"}, "c3"},
        {LayerType::add, "sum", nlohmann::json::object(), {"c3", "x"}, "sum"},
    };
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(dims, 9);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), run(naive, weights, input)), 1e-5)
        << dims.size();
  }
}

// Residual blocks, 16 channels: r0 is read by c1 and added by c2, both straight from c0's blocked
// output (the residual copied as it is); c2 adds it and passes its own blocked output on; c4
// adds x, which comes in PyTorch's layout, reordered into the blob c4 writes blocked for c5. Six
// reads linked, the naive twin's values, in 2D and 3D, batch 1 and 2.
TEST(Net, ResidualBlocksPassTheirBlockedLayoutToEveryReader) {
  const auto none = nlohmann::json::object();
  const auto conv = [](int out, int kernel) {
    return nlohmann::json{{"in_channels", 16},
                          {"out_channels", out},
                          {"kernel_size", kernel},
                          {"padding", kernel / 2}};
  };
  for (const Dims& dims : {Dims{1, 16, 9, 11}, Dims{2, 16, 4, 5, 6}}) {
    const int rank = static_cast<int>(dims.size()) - 2;
    const auto kernel = [&](int k) {
      auto c = conv(16, k);
      c["kernel_size"] = Dims(static_cast<std::size_t>(rank), k);
      return c;
    };
    auto head = kernel(1);
    head["out_channels"] = 16;  // 8 would run by thin rows where AVX-512 runs, on PyTorch's layout
    const std::vector<NodeDef> defs{
        {LayerType::convolution, "c0", kernel(3), {"x"}, "c0"},
        {LayerType::relu, "r0", none, {"c0"}, "r0"},
        {LayerType::convolution, "c1", kernel(3), {"r0"}, "c1"},
        {LayerType::relu, "r1", none, {"c1"}, "r1"},
        {LayerType::convolution, "c2", kernel(3), {"r1"}, "c2"},
        {LayerType::add, "s", none, {"c2", "r0"}, "s"},
        {LayerType::relu, "rs", none, {"s"}, "rs"},
        {LayerType::convolution, "c3", kernel(3), {"rs"}, "c3"},
        {LayerType::relu, "r3", none, {"c3"}, "r3"},
        {LayerType::convolution, "c4", kernel(3), {"r3"}, "c4"},
        {LayerType::add, "s2", none, {"c4", "x"}, "s2"},
        {LayerType::convolution, "c5", head, {"s2"}, "c5"},
    };
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(dims, 12);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), run(naive, weights, input)), 1e-5)
        << dims.size();
    EXPECT_EQ(fast.blocked_links(), 6u) << dims.size();
  }
}

// A MONAI-style residual unit: c0 and c1 each write their blocked (or channels-last) layout for
// the instance norm after them (with its PReLU or leaky ReLU taken in), which reads and writes it
// as it is for c1 and for r, whose fused add adds n1's output; r passes its own on to the head.
// Five reads linked, the naive twin's values, in 2D and 3D, batch 1 and 2, over more positions
// than one of the norm's chunks.
TEST(Net, InstanceNormsPassTheBlockedLayoutBetweenConvolutions) {
  for (const Dims& dims : {Dims{1, 16, 40, 45}, Dims{2, 16, 11, 12, 13}}) {
    const auto rank = static_cast<std::size_t>(dims.size()) - 2;
    const auto conv = [&](int in, int out, int kernel) {
      return nlohmann::json{{"in_channels", in},
                            {"out_channels", out},
                            {"kernel_size", Dims(rank, kernel)},
                            {"padding", kernel / 2}};
    };
    const std::vector<NodeDef> defs{
        {LayerType::convolution, "c0", conv(16, 32, 3), {"x"}, "c0"},
        {LayerType::instance_norm, "n0", {{"num_features", 32}, {"affine", true}}, {"c0"}, "n0"},
        {LayerType::prelu, "a0", {{"num_parameters", 32}}, {"n0"}, "a0"},
        {LayerType::convolution, "c1", conv(32, 32, 3), {"a0"}, "c1"},
        {LayerType::instance_norm, "n1", {{"num_features", 32}}, {"c1"}, "n1"},
        {LayerType::leaky_relu, "a1", {{"negative_slope", 0.1}}, {"n1"}, "a1"},
        {LayerType::convolution, "r", conv(16, 32, 3), {"x"}, "r"},
        {LayerType::add, "s", nlohmann::json::object(), {"a1", "r"}, "s"},
        {LayerType::convolution, "head", conv(32, 8, 1), {"s"}, "head"},
    };
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(dims, 13, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), run(naive, weights, input)), 1e-5)
        << dims.size();
    EXPECT_EQ(fast.blocked_links(), 5u) << dims.size();
  }
}

// A MONAI UNet's first residual unit on a one-channel image: both strided convolutions of the
// image into 16 channels run by hand (stem_convolution), c0's output passes through the instance
// norm to c1 in the channels-last layout, and r adds c1's (norm's) output as it comes, blocked,
// without copying it first. The naive twin's values, with buffers kept or freed.
TEST(Net, TheOneChannelStemAddsItsBlockedResidualAsItIs) {
  if (!detail::avx512_kernels()) {
    GTEST_SKIP() << "no AVX-512 kernels on this CPU (or oneDNN held below them)";
  }
  const auto conv = [](int in, int out, int stride) {
    return nlohmann::json{{"in_channels", in},
                          {"out_channels", out},
                          {"kernel_size", {3, 3, 3}},
                          {"stride", stride},
                          {"padding", 1}};
  };
  const std::vector<NodeDef> defs{
      {LayerType::convolution, "c0", conv(1, 16, 2), {"x"}, "c0"},
      {LayerType::instance_norm, "n0", {{"num_features", 16}}, {"c0"}, "n0"},
      {LayerType::prelu, "a0", {{"num_parameters", 1}}, {"n0"}, "a0"},
      {LayerType::convolution, "c1", conv(16, 16, 1), {"a0"}, "c1"},
      {LayerType::instance_norm, "n1", {{"num_features", 16}}, {"c1"}, "n1"},
      {LayerType::prelu, "a1", {{"num_parameters", 1}}, {"n1"}, "a1"},
      {LayerType::convolution, "r", conv(1, 16, 2), {"x"}, "r"},
      {LayerType::add, "s", nlohmann::json::object(), {"a1", "r"}, "s"},
      {LayerType::convolution, "head", conv(16, 16, 1), {"s"}, "head"},
  };
  const auto weights = weights_for(defs);
  const Dims dims{1, 1, 24, 32, 96};
  const auto input = testing::random_tensor(dims, 16, -2.0f, 2.0f);
  auto naive = make_net(defs, Backend::reference, {false, false});
  const Tensor expected = run(naive, weights, input);
  for (const std::int64_t release : {std::numeric_limits<std::int64_t>::max(), std::int64_t{0}}) {
    auto fast = make_net(defs, Backend::onednn, {.release_bytes = release});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), expected), 1e-5) << release;
    int stems = 0;
    for (const auto& node : fast.nodes()) {
      const auto* layer = dynamic_cast<const ConvolutionLayer*>(node.layer.get());
      stems += layer != nullptr && layer->runs_stem() ? 1 : 0;
    }
    EXPECT_EQ(stems, 2) << release;
    EXPECT_EQ(fast.blocked_links(), 5u) << release;
  }
}

// A U-Net's skip: c0 is read by the next stage's two strided convolutions and is an input of the
// concat that the up-convolution u also writes in place. c0 writes its own blob in its blocked
// (or channels-last) layout for c1 and c2 (c2's fused add adds c1 as it is), and the concat copies
// it into its place in PyTorch's layout. Three reads linked, the naive twin's values, 2D and 3D,
// with buffers kept or freed.
TEST(Net, ASkipReadByConvolutionsStaysBlockedAndIsCopiedIntoItsConcat) {
  for (const Dims& dims : {Dims{1, 16, 20, 22}, Dims{1, 16, 8, 10, 12}}) {
    const auto rank = static_cast<std::size_t>(dims.size()) - 2;
    const auto conv = [&](int in, int out, int kernel, int stride) {
      return nlohmann::json{{"in_channels", in},
                            {"out_channels", out},
                            {"kernel_size", Dims(rank, kernel)},
                            {"stride", stride},
                            {"padding", kernel / 2}};
    };
    const nlohmann::json up{{"in_channels", 32},
                            {"out_channels", 32},
                            {"kernel_size", Dims(rank, 2)},
                            {"stride", Dims(rank, 2)}};
    const std::vector<NodeDef> defs{
        {LayerType::convolution, "c0", conv(16, 32, 3, 1), {"x"}, "c0"},
        {LayerType::convolution, "c1", conv(32, 32, 3, 2), {"c0"}, "c1"},
        {LayerType::convolution, "c2", conv(32, 32, 3, 2), {"c0"}, "c2"},
        {LayerType::add, "s", nlohmann::json::object(), {"c2", "c1"}, "s"},
        {LayerType::transposed_convolution, "u", up, {"s"}, "u"},
        {LayerType::concat, "cat", nlohmann::json::object(), {"c0", "u"}, "cat"},
        {LayerType::convolution, "head", conv(64, 8, 1, 1), {"cat"}, "head"},
    };
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(dims, 15, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    const Tensor expected = run(naive, weights, input);
    EXPECT_LE(testing::relative_error(run(fast, weights, input), expected), 1e-5) << dims.size();
    EXPECT_EQ(fast.blocked_links(), 3u) << dims.size();
    // Every buffer freed after its last reader: u, now the first to write into the concat,
    // takes its buffer.
    auto released = make_net(defs, Backend::onednn, {.release_bytes = 0});
    EXPECT_LE(testing::relative_error(run(released, weights, input), expected), 1e-5)
        << dims.size();
  }
}

// A ResNet's stem: c0 (its relu taken in) writes its blocked (or channels-last) layout for the
// max pooling, which reads and writes it as it is for c1 and for c2, whose fused add adds it.
// Three reads linked, the naive twin's values, in 2D and 3D, batch 1 and 2.
TEST(Net, MaxPoolingPassesTheBlockedLayoutBetweenConvolutions) {
  for (const Dims& dims : {Dims{1, 3, 40, 46}, Dims{2, 3, 12, 10, 14}}) {
    const auto rank = static_cast<std::size_t>(dims.size()) - 2;
    const auto conv = [&](int in, int out, int kernel, int stride) {
      return nlohmann::json{{"in_channels", in},
                            {"out_channels", out},
                            {"kernel_size", Dims(rank, kernel)},
                            {"stride", stride},
                            {"padding", kernel / 2}};
    };
    const nlohmann::json pool{
        {"kernel_size", Dims(rank, 3)}, {"stride", Dims(rank, 2)}, {"padding", Dims(rank, 1)}};
    const std::vector<NodeDef> defs{
        {LayerType::convolution, "c0", conv(3, 32, 5, 2), {"x"}, "c0"},
        {LayerType::relu, "r0", nlohmann::json::object(), {"c0"}, "r0"},
        {LayerType::max_pool, "p", pool, {"r0"}, "p"},
        {LayerType::convolution, "c1", conv(32, 32, 3, 1), {"p"}, "c1"},
        {LayerType::relu, "r1", nlohmann::json::object(), {"c1"}, "r1"},
        {LayerType::convolution, "c2", conv(32, 32, 3, 1), {"r1"}, "c2"},
        {LayerType::add, "s", nlohmann::json::object(), {"c2", "p"}, "s"},
    };
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor(dims, 14, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), run(naive, weights, input)), 1e-5)
        << dims.size();
    EXPECT_EQ(fast.blocked_links(), 4u) << dims.size();
  }
}

// LeNet-5's c3, s4 and c5: c3 (its tanh taken in) writes its blocked or channels-last layout
// for the average pooling, which reads it and writes PyTorch's layout for the flatten and the
// linear layer. One read linked, the naive twin's values, batch 1 and 3.
TEST(Net, PoolingReadsTheBlockedLayoutBeforeAFlatten) {
  const std::vector<NodeDef> defs{
      {LayerType::convolution,
       "c3",
       {{"in_channels", 6}, {"out_channels", 16}, {"kernel_size", {5, 5}}},
       {"x"},
       "c3"},
      {LayerType::tanh, "t3", nlohmann::json::object(), {"c3"}, "t3"},
      {LayerType::avg_pool, "s4", {{"kernel_size", {2, 2}}}, {"t3"}, "s4"},
      {LayerType::flatten, "f", nlohmann::json::object(), {"s4"}, "f"},
      {LayerType::linear, "c5", {{"in_features", 400}, {"out_features", 120}}, {"f"}, "c5"},
  };
  for (const std::int64_t batch : {1, 3}) {
    const auto weights = weights_for(defs);
    const auto input = testing::random_tensor({batch, 6, 14, 14}, 16, -2.0f, 2.0f);
    auto fast = make_net(defs, Backend::onednn);
    auto naive = make_net(defs, Backend::reference, {false, false});
    EXPECT_LE(testing::relative_error(run(fast, weights, input), run(naive, weights, input)), 1e-5)
        << batch;
    EXPECT_EQ(fast.blocked_links(), 1u) << batch;
  }
}

TEST(Net, ConcatOfOneImageIsWrittenInPlaceWithTheSameValues) {
  // Batch 2 keeps the copy (an image's channels are not contiguous): a (256 per image), p (64)
  // and u (256) each in a buffer, then c (512) and t (512) in the reused ones.
  const auto pair = testing::random_tensor({2, 1, 16, 16}, 6);
  auto copied = make_net(small_u(), Backend::onednn);
  const auto both = run(copied, {}, pair);
  EXPECT_EQ(copied.activation_bytes(), 2 * 1280 * 4);
  // Each image alone, written in place, gives its half of the batch's output, bit for bit.
  for (std::int64_t n = 0; n < 2; ++n) {
    Tensor one({1, 1, 16, 16});
    std::memcpy(one.data(), pair.data() + n * 256, 256 * sizeof(float));
    auto in_place = make_net(small_u(), Backend::onednn);
    const auto got = run(in_place, {}, one);
    EXPECT_EQ(in_place.activation_bytes(), 1024 * 4);
    EXPECT_EQ(std::memcmp(got.data(), both.data() + n * 512, 512 * sizeof(float)), 0) << n;
  }
}

TEST(Net, ConcatInputReadAfterTheConcatIsDeadKeepsItsOwnBuffer) {
  // "a" is read by "e" after "c" is dead: in c's buffer, e would write over it as it reads it.
  const auto none = nlohmann::json::object();
  const std::vector<NodeDef> defs{
      {LayerType::tanh, "a", none, {"x"}, "a"},        {LayerType::sigmoid, "b", none, {"x"}, "b"},
      {LayerType::concat, "c", none, {"a", "b"}, "c"}, {LayerType::tanh, "t", none, {"c"}, "t"},
      {LayerType::sigmoid, "e", none, {"a"}, "e"},
  };
  const auto input = testing::random_tensor({1, 1, 16, 16}, 7);
  auto fast = make_net(defs, Backend::onednn, {.release_bytes = 0}, {"e", "t"});
  auto naive = make_net(defs, Backend::reference, {false, false}, {"e", "t"});
  const auto got = run(fast, {}, input);
  EXPECT_LE(testing::relative_error(got, run(naive, {}, input)), 1e-6);
  // a, b, c, then t in b's buffer grown, e in c's: 256 + 512 + 512 floats.
  EXPECT_EQ(fast.activation_bytes(), 1280 * 4);
}

// c1 hands its blocked output to c2. c1's input copy (16 MiB) stays in the shared scratch bridge_in
// after c1; c2, reading straight from the blob, gives that scratch back in a single pass (as its
// own request would have shrunk it) and leaves it for the next forward() otherwise.
TEST(Net, LinkedConvolutionsGiveBackTheSharedScratchInASinglePass) {
  const nlohmann::json conv{{"in_channels", 16}, {"out_channels", 16}, {"kernel_size", {1, 1, 1}}};
  const std::vector<NodeDef> defs{{LayerType::convolution, "c1", conv, {"x"}, "c1"},
                                  {LayerType::convolution, "c2", conv, {"c1"}, "c2"}};
  const auto weights = weights_for(defs);
  const auto input = testing::random_tensor({1, 16, 64, 64, 64}, 11);
  for (const std::int64_t release : {std::int64_t{0}, std::numeric_limits<std::int64_t>::max()}) {
    auto net = make_net(defs, Backend::onednn, {.release_bytes = release});
    const Context ctx(2);
    net.load_weights(weights);
    net.prepare(ctx, {{"x", input.dims()}});
    net.forward({{"x", input}});
    EXPECT_EQ(ctx.impl()->bridge_in.held_bytes(),
              release == 0 ? 0 : detail::SharedScratch::kShrinkBytes)
        << release;
  }
}

TEST(Net, SharedScratchShrinksOnlyWhenAskedToAndLargeAndAskedForHalfOrLess) {
  using detail::SharedScratch;
  constexpr std::size_t mib = std::size_t{1} << 20;
  EXPECT_EQ(SharedScratch::held_after(0, 10), 12u);  // whole floats
  EXPECT_EQ(SharedScratch::held_after(8 * mib, 20 * mib), 20 * mib);
  EXPECT_EQ(SharedScratch::held_after(64 * mib, 32 * mib), 32 * mib);
  EXPECT_EQ(SharedScratch::held_after(64 * mib, 33 * mib), 64 * mib);
  EXPECT_EQ(SharedScratch::held_after(8 * mib, 1 * mib), 8 * mib);
  // Not shrinking (many forward() calls of one shape): kept at the largest request.
  EXPECT_EQ(SharedScratch::held_after(64 * mib, 32 * mib, false), 64 * mib);
  EXPECT_EQ(SharedScratch::held_after(8 * mib, 20 * mib, false), 20 * mib);
}

}  // namespace
}  // namespace cajal::engine
