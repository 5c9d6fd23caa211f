// Training behaviour beyond the gradients: dropout's masks, running statistics, gradients that
// add up, inputs whose gradient is not wanted, layers without a backward, and same bytes on
// every run.
#include "tests/engine_grad/grad_harness.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "engine/context.h"
#include "engine/layer_type.h"
#include "engine/layers/reshape.h"
#include "tests/engine/layer_harness.h"

namespace cajal::engine::testing {
namespace {

using L = LayerType;
using nlohmann::json;

std::unique_ptr<Layer> training_layer(Backend backend, L type, const json& params, const Dims& dims,
                                      const Context& ctx, const WeightMap& weights = {}) {
  auto layer = create_layer(type, "layer", backend);
  layer->load_params(params);
  layer->load_weights(weights.empty() ? random_weights(*layer, 5) : weights);
  layer->set_training(true);
  layer->prepare(ctx, {dims});
  return layer;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dims() == b.dims() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

Tensor run_dropout(int threads, std::uint64_t seed, int forwards, const Tensor& x) {
  const Context ctx(threads);
  auto layer = training_layer(Backend::onednn, L::dropout, {{"p", 0.3}}, x.dims(), ctx);
  dynamic_cast<ReshapeLayer&>(*layer).set_seed(seed);
  Tensor dst(x.dims());
  for (int i = 0; i < forwards; ++i) {
    layer->forward({&x}, dst);
  }
  return dst;
}

TEST(Dropout, ZeroesAboutPOfTheValuesAndScalesTheRest) {
  const Tensor ones({4, 8, 16, 16}, 1.0f);
  const auto dst = run_dropout(2, 11, 1, ones);
  std::int64_t zeros = 0;
  for (const float v : dst.values()) {
    if (v == 0.0f) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.7f);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(dst.size()), 0.3, 0.02);
}

TEST(Dropout, SameSeedGivesSameMaskOnAnyThreadCountAndANewOneEachStep) {
  const auto x = random_tensor({2, 3, 9, 7}, 1);
  EXPECT_TRUE(same_bytes(run_dropout(1, 3, 1, x), run_dropout(2, 3, 1, x)));
  EXPECT_FALSE(same_bytes(run_dropout(2, 3, 1, x), run_dropout(2, 3, 2, x)));
  EXPECT_FALSE(same_bytes(run_dropout(2, 3, 1, x), run_dropout(2, 4, 1, x)));
}

TEST(Dropout, IsTheIdentityAtInference) {
  const auto x = random_tensor({2, 3, 5}, 1);
  EXPECT_TRUE(same_bytes(run_one(Backend::onednn, L::dropout, {{"p", 0.5}}, {x}, {}), x));
}

TEST(BatchNorm, TrainingForwardMovesRunningStatisticsWithUnbiasedVariance) {
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    const Context ctx(2);
    const WeightMap weights{{"layer.running_mean", Tensor({1}, 1.0f)},
                            {"layer.running_var", Tensor({1}, 2.0f)}};
    auto layer = training_layer(backend, L::batch_norm,
                                {{"num_features", 1}, {"affine", false}, {"momentum", 0.25}},
                                {4, 1}, ctx, weights);
    const Tensor x({4, 1}, std::vector<float>{1, 2, 3, 6});  // mean 3, unbiased variance 14 / 3
    Tensor dst(x.dims());
    layer->forward({&x}, dst);
    EXPECT_NEAR(layer->weight("running_mean").data()[0], 0.75 * 1.0 + 0.25 * 3.0, 1e-6);
    EXPECT_NEAR(layer->weight("running_var").data()[0], 0.75 * 2.0 + 0.25 * 14.0 / 3.0, 1e-6);
    EXPECT_NEAR(dst.data()[3], 3.0 / std::sqrt(3.5 + 1e-5), 1e-5);  // biased variance 14 / 4
  }
}

TEST(BatchNorm, RefusesOneValuePerChannelInTraining) {
  const Context ctx(1);
  auto layer = create_layer(L::batch_norm, "bn");
  layer->load_params({{"num_features", 3}});
  layer->load_weights(random_weights(*layer, 1));
  layer->set_training(true);
  EXPECT_THROW(layer->prepare(ctx, {{1, 3, 1, 1}}), Error);
  EXPECT_NO_THROW(layer->prepare(ctx, {{2, 3, 1, 1}}));
}

TEST(BatchNorm, RunningStatisticsAreNotTrainable) {
  auto layer = create_layer(L::batch_norm, "bn");
  layer->load_params({{"num_features", 2}});
  EXPECT_EQ(layer->trainable_roles(), (std::vector<std::string>{"weight", "bias"}));
  auto plain = create_layer(L::batch_norm, "bn");
  plain->load_params({{"num_features", 2}, {"affine", false}});
  EXPECT_TRUE(plain->trainable_roles().empty());
}

TEST(Backward, AddsWeightGradientsUntilZeroGrad) {
  for (const auto& [type, params] :
       {std::pair{L::batch_norm, json{{"num_features", 3}}},
        std::pair{L::prelu, json{{"num_parameters", 3}}},
        std::pair{L::group_norm, json{{"num_groups", 3}, {"num_channels", 3}}}}) {
    for (const auto backend : {Backend::onednn, Backend::reference}) {
      const Context ctx(2);
      auto layer = training_layer(backend, type, params, {2, 3, 4, 5}, ctx);
      const auto x = random_tensor({2, 3, 4, 5}, 1);
      const auto diff_dst = random_tensor({2, 3, 4, 5}, 2);
      Tensor dst(x.dims());
      Tensor diff_src(x.dims());
      layer->forward({&x}, dst);
      layer->backward({&x}, dst, diff_dst, {&diff_src});
      const Tensor once = layer->grad("weight");
      layer->backward({&x}, dst, diff_dst, {&diff_src});
      Tensor twice = once;
      for (auto& v : twice.values()) {
        v *= 2.0f;
      }
      EXPECT_LE(relative_error(layer->grad("weight"), twice), 1e-6) << layer->label();
      layer->zero_grad();
      EXPECT_EQ(relative_error(layer->grad("weight"), Tensor(once.dims())), 0.0);
    }
  }
}

TEST(Backward, LeavesUnwantedInputGradientsAlone) {
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    const GradCase concat{"Concat", L::concat, json::object(), {{2, 2, 3, 4}, {2, 3, 3, 4}}};
    const auto problem = make_problem(concat, 3);
    const auto full = run_backward(backend, concat, problem);
    const Context ctx(2);
    auto layer = create_layer(L::concat, "layer", backend);
    layer->load_params(json::object());
    layer->load_weights({});
    layer->set_training(true);
    layer->prepare(ctx, concat.inputs);
    Tensor dst(layer->dst_dims());
    Tensor second(concat.inputs[1], 7.0f);
    layer->forward({&problem.inputs[0], &problem.inputs[1]}, dst);
    layer->backward({&problem.inputs[0], &problem.inputs[1]}, dst, problem.diff_dst,
                    {nullptr, &second});
    EXPECT_TRUE(same_bytes(second, full.diff_src[1]));
  }
}

TEST(Backward, BatchNormWeightGradientsNeedNoInputGradient) {
  const GradCase bn{"BatchNorm", L::batch_norm, {{"num_features", 3}}, {{2, 3, 4, 5}}};
  const auto problem = make_problem(bn, 3);
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    const auto full = run_backward(backend, bn, problem);
    const Context ctx(2);
    auto layer = create_layer(L::batch_norm, "layer", backend);
    layer->load_params(bn.params);
    layer->load_weights(problem.weights);
    layer->set_training(true);
    layer->prepare(ctx, bn.inputs);
    Tensor dst(layer->dst_dims());
    layer->forward({&problem.inputs[0]}, dst);
    layer->backward({&problem.inputs[0]}, dst, problem.diff_dst, {nullptr});
    EXPECT_TRUE(same_bytes(layer->grad("weight"), full.grads.at("weight")));
    EXPECT_TRUE(same_bytes(layer->grad("bias"), full.grads.at("bias")));
  }
}

TEST(Backward, ArgmaxHasNone) {
  for (const auto backend : {Backend::onednn, Backend::reference}) {
    const Context ctx(1);
    auto layer = training_layer(backend, L::argmax, json::object(), {1, 3, 2, 2}, ctx);
    const auto x = random_tensor({1, 3, 2, 2}, 1);
    Tensor dst(layer->dst_dims());
    Tensor diff_src(x.dims());
    layer->forward({&x}, dst);
    EXPECT_THROW(layer->backward({&x}, dst, dst, {&diff_src}), Error);
  }
}

TEST(Backward, GroupNormNeedsATrainingForward) {
  const Context ctx(1);
  auto layer = create_layer(L::group_norm, "gn");
  layer->load_params({{"num_groups", 2}, {"num_channels", 4}});
  layer->load_weights(random_weights(*layer, 1));
  layer->prepare(ctx, {{2, 4, 3, 3}});
  const auto x = random_tensor({2, 4, 3, 3}, 1);
  Tensor dst(x.dims());
  Tensor diff_src(x.dims());
  layer->forward({&x}, dst);
  EXPECT_THROW(layer->backward({&x}, dst, dst, {&diff_src}), Error);
}

TEST(Backward, FollowsAPrepareForOtherDimsOrMode) {
  for (const auto& [type, params] :
       {std::pair{L::tanh, json::object()}, std::pair{L::softmax, json::object()},
        std::pair{L::batch_norm, json{{"num_features", 3}}}, std::pair{L::prelu, json::object()},
        std::pair{L::upsample, json{{"scale_factor", {2, 2}}, {"mode", "linear"}}}}) {
    const Context ctx(2);
    auto layer = create_layer(type, "layer");
    layer->load_params(params);
    layer->load_weights(random_weights(*layer, 3));
    auto twin = create_layer(type, "layer", Backend::reference);
    twin->load_params(params);
    twin->load_weights(random_weights(*twin, 3));
    for (const auto& [dims, training] :
         {std::pair{Dims{2, 3, 4, 5}, true}, std::pair{Dims{1, 3, 3, 7}, true},
          std::pair{Dims{2, 3, 5, 3}, false}}) {
      const auto x = random_tensor(dims, 1);
      const auto diff_dst = random_tensor(twin->prepare(ctx, {dims}), 2);
      Tensor dst(diff_dst.dims());
      Tensor diff_src(dims);
      Tensor expected(dims);
      for (auto* l : {layer.get(), twin.get()}) {
        l->set_training(training);
        l->prepare(ctx, {dims});
        l->forward({&x}, dst);
        l->backward({&x}, dst, diff_dst, {l == twin.get() ? &expected : &diff_src});
      }
      EXPECT_LE(relative_error(diff_src, expected), 1e-5) << layer->label() << to_string(dims);
    }
  }
}

TEST(Prelu, WeightsChangedReachesTheOneDnnForward) {
  const Context ctx(2);
  auto layer = training_layer(Backend::onednn, L::prelu, {{"num_parameters", 3}}, {2, 3, 4}, ctx);
  auto twin = training_layer(Backend::reference, L::prelu, {{"num_parameters", 3}}, {2, 3, 4}, ctx);
  for (auto* l : {layer.get(), twin.get()}) {
    l->mutable_weight("weight").values()[1] = -2.5f;
    l->weights_changed();
  }
  const auto x = random_tensor({2, 3, 4}, 1);
  Tensor dst(x.dims());
  Tensor expected(x.dims());
  layer->forward({&x}, dst);
  twin->forward({&x}, expected);
  EXPECT_LE(relative_error(dst, expected), 1e-6);
}

// oneDNN 2.6's jit resampling crashed writing a large output into a buffer that is not 32-byte
// aligned (std::vector's large buffers are 16-byte aligned).
TEST(Upsample, WritesALargeOutputIntoAnyBuffer) {
  for (const char* mode : {"nearest", "linear"}) {
    const GradCase c{
        "Large", L::upsample, {{"scale_factor", {2, 2, 2}}, {"mode", mode}}, {{2, 16, 16, 16, 16}}};
    const auto problem = make_problem(c, 4);
    const auto onednn = run_backward(Backend::onednn, c, problem);
    const auto twin = run_backward(Backend::reference, c, problem);
    EXPECT_LE(relative_error(onednn.dst, twin.dst), 1e-6) << mode;
    EXPECT_LE(relative_error(onednn.diff_src[0], twin.diff_src[0]), 1e-5) << mode;
  }
}

// Layers whose backward reduces (statistics, softmax's sum, prelu's slope gradient).
class SameBytes : public ::testing::TestWithParam<GradCase> {};

TEST_P(SameBytes, OnEveryRunWithTheSameThreadCount) {
  const auto problem = make_problem(GetParam(), 9);
  const auto first = run_backward(Backend::onednn, GetParam(), problem, 2);
  const auto second = run_backward(Backend::onednn, GetParam(), problem, 2);
  EXPECT_TRUE(same_bytes(first.dst, second.dst));
  EXPECT_TRUE(same_bytes(first.diff_src[0], second.diff_src[0]));
  for (const auto& [role, g] : first.grads) {
    EXPECT_TRUE(same_bytes(g, second.grads.at(role))) << role;
  }
  for (const auto& [role, w] : first.weights) {
    EXPECT_TRUE(same_bytes(w, second.weights.at(role))) << role;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Reductions, SameBytes,
    ::testing::Values(GradCase{"BatchNorm", L::batch_norm, {{"num_features", 8}}, {{4, 8, 9, 11}}},
                      GradCase{"GroupNorm",
                               L::group_norm,
                               {{"num_groups", 4}, {"num_channels", 8}},
                               {{4, 8, 5, 7, 3}}},
                      GradCase{"InstanceNorm",
                               L::instance_norm,
                               {{"num_features", 8}, {"affine", true}},
                               {{4, 8, 9, 11}}},
                      GradCase{"Softmax", L::softmax, json::object(), {{4, 8, 9, 11}}},
                      GradCase{"Prelu", L::prelu, {{"num_parameters", 8}}, {{4, 8, 9, 11}}}),
    [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace cajal::engine::testing
