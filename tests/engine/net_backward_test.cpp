// Net in training: backward through a branching graph, parameters, freezing, checkpoints.
#include "engine/net.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/layers/common.h"
#include "tests/engine/backward_harness.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine {
namespace {

using testing::NodeDef;
using testing::weights_for;

nlohmann::json conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
  return {{"in_channels", in},
          {"out_channels", out},
          {"kernel_size", {kernel, kernel}},
          {"stride", stride},
          {"padding", kernel / 2}};
}

// x -> c1 -> a; a -> c2 -> pool -> b (an output); a -> c3 -> c (an output): blob a is read twice.
std::vector<NodeDef> branching() {
  return {
      {LayerType::convolution, "c1", conv(2, 16, 3, 1), {"x"}, "a"},
      {LayerType::convolution, "c2", conv(16, 8, 3, 2), {"a"}, "c2"},
      {LayerType::max_pool, "pool", {{"kernel_size", {2, 2}}}, {"c2"}, "b"},
      {LayerType::convolution, "c3", conv(16, 4, 1, 1), {"a"}, "c"},
  };
}

const Dims kInput{2, 2, 9, 10};

// A 3D convolution of a 3x3x3 kernel padded by 1, without bias.
nlohmann::json conv3d(std::int64_t in, std::int64_t out) {
  return {{"in_channels", in},
          {"out_channels", out},
          {"kernel_size", {3, 3, 3}},
          {"padding", {1, 1, 1}},
          {"bias", false}};
}

// A 3D up-convolution of a 2x2x2 kernel at stride 2.
nlohmann::json up3d(std::int64_t in, std::int64_t out, bool bias) {
  return {{"in_channels", in},
          {"out_channels", out},
          {"kernel_size", {2, 2, 2}},
          {"stride", {2, 2, 2}},
          {"bias", bias}};
}

Net make_training_net(const std::vector<NodeDef>& defs, Backend backend, const WeightMap& weights) {
  std::vector<Node> nodes = testing::make_nodes(defs, backend);
  Net net({"x"}, std::move(nodes), {"b", "c"}, NetOptions::for_training());
  net.load_weights(weights);
  net.set_training(true);
  return net;
}

struct NetGradients {
  Tensor diff_x;
  WeightMap grads;  // "<layer>.<role>"
};

NetGradients run_net(Backend backend, const Tensor& x, const std::map<std::string, Tensor>& diffs,
                     int threads = 2) {
  const auto defs = branching();
  auto net = make_training_net(defs, backend, weights_for(defs));
  const Context ctx(threads);
  net.prepare(ctx, {{"x", x.dims()}});
  net.forward({{"x", x}});
  NetGradients result;
  result.diff_x = net.backward(diffs, {"x"}).at("x");
  for (const auto& p : net.parameters()) {
    result.grads[p.name] = *p.grad;
  }
  return result;
}

std::map<std::string, Tensor> output_diffs(const Dims& input = kInput) {
  // c2 (3x3, stride 2, padding 1) then a 2x2 pooling; c keeps the input's size.
  const auto pooled = [](std::int64_t size) { return ((size - 1) / 2 + 1) / 2; };
  return {{"b", testing::random_tensor({input[0], 8, pooled(input[2]), pooled(input[3])}, 21)},
          {"c", testing::random_tensor({input[0], 4, input[2], input[3]}, 22)}};
}

// The same gradients from the layers one by one (naive twins), summing a's two gradients by hand.
NetGradients by_hand(const Tensor& x, const std::map<std::string, Tensor>& diffs) {
  const auto defs = branching();
  const auto weights = weights_for(defs);
  const Context ctx(1);
  std::map<std::string, Tensor> blobs{{"x", x}};
  std::map<std::string, std::unique_ptr<Layer>> layers;
  for (const auto& def : defs) {
    auto layer = create_layer(def.type, def.name, Backend::reference);
    layer->load_params(def.params);
    layer->load_weights(weights);
    layer->set_training(true);
    const auto& src = blobs.at(def.inputs[0]);
    Tensor dst(layer->prepare(ctx, {src.dims()}));
    layer->forward({&src}, dst);
    blobs[def.output] = dst;
    layers[def.name] = std::move(layer);
  }
  const auto backward = [&](const std::string& name, const std::string& in, const std::string& out,
                            const Tensor& diff_dst) {
    Tensor diff_src(blobs.at(in).dims());
    layers.at(name)->backward({&blobs.at(in)}, blobs.at(out), diff_dst, {&diff_src});
    return diff_src;
  };
  const auto diff_c2 = backward("pool", "c2", "b", diffs.at("b"));
  auto diff_a = backward("c2", "a", "c2", diff_c2);
  const auto diff_a_from_c3 = backward("c3", "a", "c", diffs.at("c"));
  for (std::int64_t i = 0; i < diff_a.size(); ++i) {
    diff_a.data()[i] += diff_a_from_c3.data()[i];
  }
  NetGradients result;
  result.diff_x = backward("c1", "x", "a", diff_a);
  for (const auto& name : {"c1", "c2", "c3"}) {
    for (const auto& role : {"weight", "bias"}) {
      result.grads[std::string(name) + "." + role] = layers.at(name)->grad(role);
    }
  }
  return result;
}

void expect_close(const NetGradients& got, const NetGradients& expected, double tolerance) {
  EXPECT_LE(testing::relative_error(got.diff_x, expected.diff_x), tolerance) << "diff of x";
  ASSERT_EQ(got.grads.size(), expected.grads.size());
  for (const auto& [name, grad] : expected.grads) {
    EXPECT_LE(testing::relative_error(got.grads.at(name), grad), tolerance) << name;
  }
}

TEST(NetBackward, SumsTheGradientsOfABlobReadTwice) {
  // The second input makes a's gradient 23040 values, summed on the threads.
  for (const Dims& input : {kInput, Dims{2, 2, 24, 30}}) {
    const auto x = testing::random_tensor(input, 5);
    const auto diffs = output_diffs(input);
    const auto expected = by_hand(x, diffs);
    expect_close(run_net(Backend::reference, x, diffs), expected, 1e-6);
    expect_close(run_net(Backend::onednn, x, diffs), expected, 1e-4);
  }
}

TEST(NetBackward, TreatsAnOutputWithoutGradientAsZero) {
  const auto x = testing::random_tensor(kInput, 5);
  auto diffs = output_diffs();
  const auto without_b = run_net(Backend::onednn, x, {{"c", diffs.at("c")}});
  diffs.at("b") = Tensor(diffs.at("b").dims());
  expect_close(without_b, run_net(Backend::onednn, x, diffs), 1e-6);
}

TEST(NetBackward, IsDeterministicForAThreadCount) {
  const auto x = testing::random_tensor(kInput, 5);
  const auto diffs = output_diffs();
  const auto first = run_net(Backend::onednn, x, diffs, 2);
  const auto second = run_net(Backend::onednn, x, diffs, 2);
  const auto same_bytes = [](const Tensor& a, const Tensor& b) {
    return a.dims() == b.dims() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * 4) == 0;
  };
  EXPECT_TRUE(same_bytes(first.diff_x, second.diff_x));
  for (const auto& [name, grad] : first.grads) {
    EXPECT_TRUE(same_bytes(grad, second.grads.at(name))) << name;
  }
}

TEST(NetBackward, ParametersLeaveOutFrozenLayers) {
  const auto defs = branching();
  auto net = make_training_net(defs, Backend::onednn, weights_for(defs));
  EXPECT_EQ(net.parameters().size(), 6u);
  net.freeze("c1");
  std::vector<std::string> names;
  for (const auto& p : net.parameters()) {
    names.push_back(p.name);
    EXPECT_EQ(p.value->dims(), p.grad->dims()) << p.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"c2.weight", "c2.bias", "c3.weight", "c3.bias"}));
  EXPECT_THROW(net.freeze("decoder"), Error);
}

TEST(NetBackward, FrozenLayersStillPassGradientsThrough) {
  const auto x = testing::random_tensor(kInput, 5);
  const auto diffs = output_diffs();
  const auto defs = branching();
  auto net = make_training_net(defs, Backend::onednn, weights_for(defs));
  net.freeze("c");  // every convolution
  const Context ctx(2);
  net.prepare(ctx, {{"x", x.dims()}});
  net.forward({{"x", x}});
  const auto diff_x = net.backward(diffs, {"x"}).at("x");
  EXPECT_TRUE(net.parameters().empty());
  EXPECT_LE(testing::relative_error(diff_x, by_hand(x, diffs).diff_x), 1e-4);
}

TEST(NetBackward, WeightsRoundTripThroughLoadWeights) {
  const auto defs = branching();
  const auto loaded = weights_for(defs);
  auto net = make_training_net(defs, Backend::onednn, loaded);
  auto params = net.parameters();
  params[0].value->data()[0] += 1.0f;
  const auto saved = net.weights();
  ASSERT_EQ(saved.size(), loaded.size());
  for (const auto& [name, tensor] : loaded) {
    const double expected = name == params[0].name ? 1.0 : 0.0;
    double diff = 0.0;
    for (std::int64_t i = 0; i < tensor.size(); ++i) {
      diff += std::abs(saved.at(name).data()[i] - tensor.data()[i]);
    }
    EXPECT_NEAR(diff, expected, 1e-6) << name;
  }
  auto again = make_training_net(defs, Backend::onednn, saved);
  EXPECT_EQ(again.weights().at(params[0].name).data()[0], params[0].value->data()[0]);
}

TEST(NetBackward, TrainingNeedsNoFoldingOrFusing) {
  std::vector<Node> nodes;
  auto layer = create_layer(LayerType::convolution, "c1");
  layer->load_params(conv(2, 4, 3, 1));
  nodes.push_back({std::move(layer), {"x"}, "a"});
  Net net({"x"}, std::move(nodes), {"a"});
  net.load_weights(weights_for({{LayerType::convolution, "c1", conv(2, 4, 3, 1), {"x"}, "a"}}));
  EXPECT_THROW(net.set_training(true), Error);
}

TEST(NetBackward, TrainingForwardReadsWeightsChangedInPlace) {
  const auto x = testing::random_tensor(kInput, 5);
  const auto defs = branching();
  const auto weights = weights_for(defs);
  auto net = make_training_net(defs, Backend::onednn, weights);
  const Context ctx(2);
  net.prepare(ctx, {{"x", x.dims()}});
  net.forward({{"x", x}});
  for (auto& p : net.parameters()) {
    for (auto& v : p.value->values()) {
      v *= 0.5f;
    }
  }
  const auto got = net.forward({{"x", x}}).at("c");
  auto halved = weights;
  for (auto& [name, tensor] : halved) {
    for (auto& v : tensor.values()) {
      v *= 0.5f;
    }
  }
  auto expected_net = make_training_net(defs, Backend::reference, halved);
  expected_net.prepare(ctx, {{"x", x.dims()}});
  EXPECT_LE(testing::relative_error(got, expected_net.forward({{"x", x}}).at("c")), 1e-5);
}

// `steps` training steps of a prepared net on x with these gradients of its outputs: the last
// step's outputs, the gradient of x ("diff x"), the last step's parameter gradients and every
// weight (running statistics included).
std::map<std::string, Tensor> training_results(Net& net, const Tensor& x,
                                               const std::map<std::string, Tensor>& diffs,
                                               int steps = 1) {
  std::map<std::string, Tensor> values;
  for (int step = 0; step < steps; ++step) {
    net.zero_grad();
    for (auto& [name, tensor] : net.forward({{"x", x}})) {
      values[name] = std::move(tensor);
    }
    values["diff x"] = net.backward(diffs, {"x"}).at("x");
  }
  for (const auto& p : net.parameters()) {
    values[p.name] = *p.grad;
  }
  for (const auto& [name, tensor] : net.weights()) {
    values[name] = tensor;
  }
  return values;
}

// A ReLU that alone reads a batch norm's output is applied by the batch norm in training: r1 here
// (its blob is bn1's, 2 x 16 x 9 x 10 floats fewer), not r2, whose input c3 reads too. Outputs,
// running statistics, the input's gradient and every parameter's are the naive twins'.
TEST(NetBackward, AReluAloneAfterABatchNormIsAppliedByIt) {
  const auto none = nlohmann::json::object();
  // No bias before a batch norm: its gradient is 0 but for rounding, no relative error to check.
  auto c1 = conv(2, 16, 3, 1);
  auto c2 = conv(16, 8, 3, 1);
  c1["bias"] = false;
  c2["bias"] = false;
  const std::vector<NodeDef> defs{
      {LayerType::convolution, "c1", c1, {"x"}, "a"},
      {LayerType::batch_norm, "bn1", {{"num_features", 16}}, {"a"}, "b"},
      {LayerType::relu, "r1", none, {"b"}, "r"},
      {LayerType::convolution, "c2", c2, {"r"}, "c2"},
      {LayerType::batch_norm, "bn2", {{"num_features", 8}}, {"c2"}, "d"},
      {LayerType::relu, "r2", none, {"d"}, "e"},
      {LayerType::convolution, "c3", conv(8, 4, 1, 1), {"d"}, "f"},
  };
  const auto weights = weights_for(defs);
  const auto x = testing::random_tensor(kInput, 31);
  const std::map<std::string, Tensor> diffs{{"e", testing::random_tensor({2, 8, 9, 10}, 32)},
                                            {"f", testing::random_tensor({2, 4, 9, 10}, 33)}};
  const Context ctx(2);
  std::map<Backend, std::map<std::string, Tensor>> got;
  std::map<Backend, std::int64_t> bytes;
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    Net net({"x"}, testing::make_nodes(defs, backend), {"e", "f"}, NetOptions::for_training());
    net.load_weights(weights);
    net.set_training(true);
    net.prepare(ctx, {{"x", x.dims()}});
    bytes[backend] = net.activation_bytes();
    got[backend] = training_results(net, x, diffs);
  }
  ASSERT_EQ(got[Backend::onednn].size(), got[Backend::reference].size());
  for (const auto& [name, expected] : got[Backend::reference]) {
    EXPECT_LE(testing::relative_error(got[Backend::onednn].at(name), expected), 1e-5) << name;
  }
  EXPECT_EQ(bytes[Backend::reference] - bytes[Backend::onednn], 2 * 16 * 9 * 10 * 4);
}

// Batch norms between 3D convolutions take and give the convolutions' blocked layouts
// (link_training_layouts): bn1 reads c1's output (two channels in: oneDNN's first-layer weight
// gradient) and writes c2's input, bn2 reads c2's output and writes c3's input, bn3
// reads c3's output and writes PyTorch's layout for c4, the pooling and two concats: the one c5
// alone reads writes c5's input in its blocked layout (two samples: each input's part of the
// blocked output is strided), the one a pooling reads too stays in PyTorch's; a third concat of
// two up-convolutions that c7 reads takes both in its blocks (into 16 channels by hand,
// unpool_convolution_blocked; into 32 by oneDNN's primitive). 150 positions a sample (the sums'
// lanes end in 4 positions and a tail of 2), two samples. Outputs, running statistics, gradients:
// the bytes of the same net kept in PyTorch's layout.
TEST(NetBackward, BatchNormsTakeTheConvolutionsBlockedLayoutsWithTheSameBytes) {
  const auto none = nlohmann::json::object();
  const std::vector<NodeDef> defs{
      {LayerType::convolution, "c1", conv3d(2, 16), {"x"}, "a"},
      {LayerType::batch_norm, "bn1", {{"num_features", 16}}, {"a"}, "b"},
      {LayerType::relu, "r1", none, {"b"}, "r1"},
      {LayerType::convolution, "c2", conv3d(16, 16), {"r1"}, "c"},
      {LayerType::batch_norm, "bn2", {{"num_features", 16}}, {"c"}, "d"},
      {LayerType::relu, "r2", none, {"d"}, "r2"},
      {LayerType::convolution, "c3", conv3d(16, 32), {"r2"}, "e"},
      {LayerType::batch_norm, "bn3", {{"num_features", 32}}, {"e"}, "f"},
      {LayerType::convolution, "c4", conv3d(32, 16), {"f"}, "g"},
      {LayerType::max_pool, "pool", {{"kernel_size", {2, 2, 2}}}, {"f"}, "h"},
      {LayerType::concat, "cat", none, {"g", "f"}, "cat"},
      {LayerType::convolution, "c5", conv3d(48, 16), {"cat"}, "k"},
      {LayerType::concat, "cat2", none, {"f", "g"}, "cat2"},
      {LayerType::convolution, "c6", conv3d(48, 16), {"cat2"}, "m"},
      {LayerType::max_pool, "pool2", {{"kernel_size", {2, 2, 2}}}, {"cat2"}, "n"},
      {LayerType::transposed_convolution, "up1", up3d(32, 16, true), {"h"}, "u1"},
      {LayerType::transposed_convolution, "up2", up3d(32, 32, false), {"h"}, "u2"},
      {LayerType::concat, "cat3", none, {"u1", "u2"}, "cat3"},
      {LayerType::convolution, "c7", conv3d(48, 16), {"cat3"}, "p"},
  };
  const auto weights = weights_for(defs);
  const auto x = testing::random_tensor({2, 2, 5, 6, 5}, 41);
  const std::map<std::string, Tensor> diffs{{"g", testing::random_tensor({2, 16, 5, 6, 5}, 42)},
                                            {"h", testing::random_tensor({2, 32, 2, 3, 2}, 43)},
                                            {"k", testing::random_tensor({2, 16, 5, 6, 5}, 44)},
                                            {"m", testing::random_tensor({2, 16, 5, 6, 5}, 45)},
                                            {"n", testing::random_tensor({2, 48, 2, 3, 2}, 46)},
                                            {"p", testing::random_tensor({2, 16, 4, 6, 4}, 47)}};
  const Context ctx(2);
  std::map<bool, std::map<std::string, Tensor>> got;
  for (const bool blocked : {false, true}) {
    NetOptions options = NetOptions::for_training();
    options.blocked_training_layouts = blocked;
    Net net({"x"}, testing::make_nodes(defs, Backend::onednn), {"g", "h", "k", "m", "n", "p"},
            options);
    net.load_weights(weights);
    net.set_training(true);
    net.prepare(ctx, {{"x", x.dims()}});
    EXPECT_EQ(net.training_layout_links(), blocked && detail::avx512_kernels() ? 9U : 0U);
    got[blocked] = training_results(net, x, diffs, 2);  // the second on the first one's buffers
  }
  ASSERT_EQ(got[true].size(), got[false].size());
  for (const auto& [name, expected] : got[false]) {
    const Tensor& actual = got[true].at(name);
    ASSERT_EQ(actual.dims(), expected.dims()) << name;
    EXPECT_EQ(std::memcmp(actual.data(), expected.data(), sizeof(float) * expected.size()), 0)
        << name;
  }
}

// A U-Net's skip in blocks (link_training_layouts): bn1's output after its ReLU is read by a max
// pooling that tiles it (into c2, which alone reads the pooling's output) and by a concat that
// c3 alone reads, beside an up-convolution: bn1 writes the blocks, the pooling reads and writes
// them (and their gradients), the concat copies them; with one sample it only views them (its
// inputs written in place into its buffer, their gradients runs of its gradient). One sample and
// two; with the links off, the same bytes.
TEST(NetBackward, ASkipReadByAPoolingAndAConcatStaysInBlocksWithTheSameBytes) {
  const auto none = nlohmann::json::object();
  const std::vector<NodeDef> net_defs{
      {LayerType::convolution, "c1", conv3d(2, 16), {"x"}, "a"},
      {LayerType::batch_norm, "bn1", {{"num_features", 16}}, {"a"}, "b"},
      {LayerType::relu, "r1", none, {"b"}, "skip"},
      {LayerType::max_pool, "pool", {{"kernel_size", {2, 2, 2}}}, {"skip"}, "p"},
      {LayerType::convolution, "c2", conv3d(16, 32), {"p"}, "q"},
      {LayerType::transposed_convolution, "up", up3d(32, 16, true), {"q"}, "u"},
      {LayerType::concat, "cat", none, {"u", "skip"}, "cat"},
      {LayerType::convolution, "c3", conv3d(32, 16), {"cat"}, "k"},
  };
  const auto weights = weights_for(net_defs);
  for (const std::int64_t batch : {1, 2}) {
    const auto x = testing::random_tensor({batch, 2, 4, 6, 4}, 51);
    const std::map<std::string, Tensor> diffs{
        {"k", testing::random_tensor({batch, 16, 4, 6, 4}, 52)}};
    const Context ctx(2);
    std::map<bool, std::map<std::string, Tensor>> got;
    for (const bool blocked : {false, true}) {
      NetOptions options = NetOptions::for_training();
      options.blocked_training_layouts = blocked;
      Net net({"x"}, testing::make_nodes(net_defs, Backend::onednn), {"k"}, options);
      net.load_weights(weights);
      net.set_training(true);
      net.prepare(ctx, {{"x", x.dims()}});
      // c1 -> bn1, bn1 -> the skip (the pooling and c2 after it; the concat), cat -> c3,
      // up -> cat.
      EXPECT_EQ(net.training_layout_links(), blocked && detail::avx512_kernels() ? 5U : 0U);
      got[blocked] = training_results(net, x, diffs, 2);
    }
    ASSERT_EQ(got[true].size(), got[false].size());
    for (const auto& [name, expected] : got[false]) {
      const Tensor& actual = got[true].at(name);
      ASSERT_EQ(actual.dims(), expected.dims()) << name;
      EXPECT_EQ(std::memcmp(actual.data(), expected.data(), sizeof(float) * expected.size()), 0)
          << name << " batch " << batch;
    }
  }
}

TEST(NetBackward, SwitchesBackToInferenceWithTheTrainedWeights) {
  const auto x = testing::random_tensor(kInput, 5);
  const auto defs = branching();
  auto net = make_training_net(defs, Backend::onednn, weights_for(defs));
  const Context ctx(2);
  net.prepare(ctx, {{"x", x.dims()}});
  net.forward({{"x", x}});
  for (auto& p : net.parameters()) {
    p.value->data()[0] += 0.25f;
  }
  net.set_training(false);
  net.prepare(ctx, {{"x", x.dims()}});
  const auto got = net.forward({{"x", x}}).at("b");
  std::vector<Node> nodes;
  for (const auto& def : defs) {
    auto layer = create_layer(def.type, def.name, Backend::reference);
    layer->load_params(def.params);
    nodes.push_back({std::move(layer), def.inputs, def.output});
  }
  Net fresh({"x"}, std::move(nodes), {"b", "c"});
  fresh.load_weights(net.weights());
  fresh.prepare(ctx, {{"x", x.dims()}});
  EXPECT_LE(testing::relative_error(got, fresh.forward({{"x", x}}).at("b")), 1e-5);
}

}  // namespace
}  // namespace cajal::engine
