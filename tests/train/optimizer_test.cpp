#include "engine/train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/train/config.h"
#include "tests/train/fixture.h"

namespace cajal::engine::train {
namespace {

using testing::read_fixture;
using testing::relative_error;
using testing::tensor_from_json;

// Two parameters "w" and "b" with their gradients, owned here.
struct Model {
  Tensor w, b, grad_w, grad_b;
  std::vector<Parameter> parameters() { return {{"w", &w, &grad_w}, {"b", &b, &grad_b}}; }
};

Model initial_model(const nlohmann::json& fixture) {
  Model m;
  m.w = tensor_from_json(fixture.at("params").at("w"));
  m.b = tensor_from_json(fixture.at("params").at("b"));
  m.grad_w = Tensor(m.w.dims());
  m.grad_b = Tensor(m.b.dims());
  return m;
}

void set_grads(Model& m, const nlohmann::json& fixture, std::size_t step) {
  m.grad_w = tensor_from_json(fixture.at("grads").at(step).at("w"));
  m.grad_b = tensor_from_json(fixture.at("grads").at(step).at("b"));
}

class TorchOptimizer : public ::testing::TestWithParam<std::string> {};

// tools/export_torch_train_fixtures.py ran torch.optim for 5 steps on the same gradients.
TEST_P(TorchOptimizer, MatchesPyTorchOverFiveSteps) {
  const auto fixture = read_fixture("optimizers");
  nlohmann::json c;
  for (const auto& candidate : fixture.at("cases")) {
    if (candidate.at("name") == GetParam())
      c = candidate;
  }
  ASSERT_FALSE(c.is_null());
  auto m = initial_model(fixture);
  Optimizer optimizer(optimizer_config_from_json(c.at("config")), m.parameters());
  for (std::size_t step = 0; step < 5; ++step) {
    set_grads(m, fixture, step);
    optimizer.step();
    EXPECT_LE(relative_error(m.w, tensor_from_json(c.at("steps").at(step).at("w"))), 1e-5)
        << "step " << step;
    EXPECT_LE(relative_error(m.b, tensor_from_json(c.at("steps").at(step).at("b"))), 1e-5)
        << "step " << step;
  }
  const auto state = optimizer.state();
  for (const auto& [name, expected] : c.at("state").items()) {
    ASSERT_TRUE(state.contains(name)) << name;
    EXPECT_LE(relative_error(state.at(name), tensor_from_json(expected)), 1e-5) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchOptimizer,
                         ::testing::Values("sgd", "sgd_momentum_wd", "sgd_nesterov_wd",
                                           "sgd_dampening", "adam", "adam_wd", "adamw", "nadam",
                                           "nadam_wd"),
                         [](const auto& param_info) { return param_info.param; });

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dims() == b.dims() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

std::string type_name(const ::testing::TestParamInfo<OptimizerType>& param_info) {
  switch (param_info.param) {
    case OptimizerType::sgd:
      return "sgd";
    case OptimizerType::adam:
      return "adam";
    case OptimizerType::adamw:
      return "adamw";
    case OptimizerType::nadam:
      return "nadam";
  }
  return "unknown";
}

class OptimizerResume : public ::testing::TestWithParam<OptimizerType> {};

// Two steps, a checkpoint (weights and state), a fresh optimizer that loads it, three more steps:
// the weights equal five uninterrupted steps byte for byte.
TEST_P(OptimizerResume, ContinuesExactlyFromSavedState) {
  const auto fixture = read_fixture("optimizers");
  OptimizerConfig config{.type = GetParam(),
                         .learning_rate = 1e-2,
                         .weight_decay = 1e-2,
                         .momentum = 0.9,
                         .dampening = 0.1};
  auto straight = initial_model(fixture);
  Optimizer one(config, straight.parameters());
  for (std::size_t step = 0; step < 5; ++step) {
    set_grads(straight, fixture, step);
    one.step();
  }
  auto first = initial_model(fixture);
  Optimizer before(config, first.parameters());
  for (std::size_t step = 0; step < 2; ++step) {
    set_grads(first, fixture, step);
    before.step();
  }
  auto resumed = first;
  Optimizer after(config, resumed.parameters());
  after.load_state(before.state());
  EXPECT_EQ(after.step_count(), 2);
  for (std::size_t step = 2; step < 5; ++step) {
    set_grads(resumed, fixture, step);
    after.step();
  }
  EXPECT_TRUE(same_bytes(resumed.w, straight.w));
  EXPECT_TRUE(same_bytes(resumed.b, straight.b));
}

INSTANTIATE_TEST_SUITE_P(Types, OptimizerResume,
                         ::testing::Values(OptimizerType::sgd, OptimizerType::adam,
                                           OptimizerType::adamw, OptimizerType::nadam),
                         type_name);

TEST(Optimizer, RejectsStateThatDoesNotFit) {
  const auto fixture = read_fixture("optimizers");
  auto m = initial_model(fixture);
  Optimizer optimizer({.type = OptimizerType::adam}, m.parameters());
  auto state = optimizer.state();
  EXPECT_EQ(state.size(), 6u);
  auto missing = state;
  missing.erase("w.exp_avg");
  missing.emplace("w.other", Tensor({1}));
  EXPECT_THROW(optimizer.load_state(missing), Error);
  auto wrong_dims = state;
  wrong_dims.at("b.exp_avg_sq") = Tensor({5});
  EXPECT_THROW(optimizer.load_state(wrong_dims), Error);
  auto extra = state;
  extra.emplace("c.exp_avg", Tensor({1}));
  EXPECT_THROW(optimizer.load_state(extra), Error);
  auto fractional = state;
  fractional.at("w.step") = Tensor({1}, 1.5f);
  EXPECT_THROW(optimizer.load_state(fractional), Error);
}

TEST(Optimizer, RejectsInvalidConfigAndParameters) {
  Tensor w({2}), g({2}), g3({3});
  EXPECT_THROW(Optimizer({.nesterov = true}, {{"w", &w, &g}}), Error);
  EXPECT_THROW(Optimizer({.type = OptimizerType::adam, .beta1 = 1.0}, {{"w", &w, &g}}), Error);
  EXPECT_THROW(Optimizer({}, {{"w", &w, &g3}}), Error);
  EXPECT_THROW(Optimizer({}, {{"w", &w, nullptr}}), Error);
  EXPECT_THROW(Optimizer({}, {{"w", &w, &g}, {"w", &w, &g}}), Error);
}

TEST(Optimizer, ZeroGradAndLearningRate) {
  Tensor w({2}, 1.0f), g({2}, 3.0f);
  Optimizer optimizer({.learning_rate = 0.5}, {{"w", &w, &g}});
  optimizer.set_learning_rate(0.25);
  optimizer.step();
  EXPECT_EQ(w.data()[0], 0.25f);
  optimizer.zero_grad();
  EXPECT_EQ(g.data()[1], 0.0f);
  EXPECT_THROW(optimizer.set_learning_rate(-1.0), Error);
}

// A parameter of 40,000 values (updated on two threads) against the same values as 40
// parameters of 1,000 (each updated on one): the same bytes after three steps, for every
// optimiser.
TEST(Optimizer, LargeParametersUpdateOnThreadsAsSmallOnes) {
  const Context two_threads(2);
  constexpr std::size_t kCount = 40000;
  constexpr std::size_t kPiece = 1000;
  for (const auto type :
       {OptimizerType::sgd, OptimizerType::adam, OptimizerType::adamw, OptimizerType::nadam}) {
    const OptimizerConfig config{.type = type,
                                 .learning_rate = 0.01,
                                 .weight_decay = 0.01,
                                 .momentum = type == OptimizerType::sgd ? 0.9 : 0.0};
    std::vector<float> values(kCount);
    std::vector<float> grads(kCount);
    for (std::size_t i = 0; i < kCount; ++i) {
      values[i] = std::sin(0.37f * static_cast<float>(i));
      grads[i] = std::cos(0.11f * static_cast<float>(i)) * 0.5f;
    }
    Tensor whole({static_cast<std::int64_t>(kCount)}, values);
    Tensor whole_grad({static_cast<std::int64_t>(kCount)}, grads);
    std::vector<Tensor> pieces;
    std::vector<Tensor> piece_grads;
    for (std::size_t at = 0; at < kCount; at += kPiece) {
      pieces.emplace_back(Dims{static_cast<std::int64_t>(kPiece)},
                          std::vector<float>(values.begin() + at, values.begin() + at + kPiece));
      piece_grads.emplace_back(Dims{static_cast<std::int64_t>(kPiece)},
                               std::vector<float>(grads.begin() + at, grads.begin() + at + kPiece));
    }
    std::vector<Parameter> piece_params;
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      piece_params.push_back({"p" + std::to_string(p), &pieces[p], &piece_grads[p]});
    }
    Optimizer large(config, {{"w", &whole, &whole_grad}});
    Optimizer small(config, piece_params);
    for (int step = 0; step < 3; ++step) {
      large.step();
      small.step();
    }
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      ASSERT_EQ(std::memcmp(whole.data() + p * kPiece, pieces[p].data(), kPiece * sizeof(float)), 0)
          << "optimiser " << static_cast<int>(type) << ", values from " << p * kPiece;
    }
  }
}

// torch.nn.utils.clip_grad_norm_ on three gradients, clipping (max 1) and not (max 100).
TEST(ClipGradNorm, MatchesPyTorch) {
  for (const auto& c : read_fixture("clip")) {
    std::vector<Tensor> values, grads;
    for (const auto& g : c.at("grads")) {
      grads.push_back(tensor_from_json(g));
      values.emplace_back(grads.back().dims());
    }
    std::vector<Parameter> params;
    for (std::size_t i = 0; i < grads.size(); ++i) {
      params.push_back({"p" + std::to_string(i), &values[i], &grads[i]});
    }
    const double norm = clip_grad_norm(params, c.at("max_norm"));
    EXPECT_LE(std::abs(norm - double{c.at("norm")}), 1e-6 * norm);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      EXPECT_LE(relative_error(grads[i], tensor_from_json(c.at("clipped").at(i))), 1e-6);
    }
  }
  Tensor w({1}), g({1}, NAN);
  const std::vector<Parameter> bad{{"w", &w, &g}};
  EXPECT_THROW(clip_grad_norm(bad, 1.0), Error);
  EXPECT_THROW(clip_grad_norm(bad, 0.0), Error);
}

}  // namespace
}  // namespace cajal::engine::train
