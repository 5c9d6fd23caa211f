#include "engine/train/config.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cajal::engine::train {
namespace {

using nlohmann::json;

std::string error_of(void (*parse)(const json&), const json& j) {
  try {
    parse(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TrainConfig, ParsesEveryLossType) {
  const auto ce = std::get<CrossEntropyConfig>(loss_config_from_json(
      json::parse(R"({"type": "cross_entropy", "class_weights": [1, 2.5], "ignore_index": 255})")));
  EXPECT_EQ(ce.class_weights, (std::vector<float>{1.0f, 2.5f}));
  EXPECT_EQ(ce.ignore_index, 255);
  const auto dce = std::get<DiceCrossEntropyConfig>(loss_config_from_json(json::parse(
      R"({"type": "dice_cross_entropy", "weight_dice": 0.5,
          "dice": {"batch_dice": false, "include_background": true, "smooth": 1}})")));
  EXPECT_EQ(dce.weight_dice, 0.5);
  EXPECT_FALSE(dce.dice.batch_dice);
  EXPECT_TRUE(dce.dice.include_background);
  EXPECT_EQ(dce.cross_entropy.ignore_index, -100);
  EXPECT_TRUE(std::holds_alternative<MeanSquaredErrorConfig>(
      loss_config_from_json(json{{"type", "mean_squared_error"}})));
  EXPECT_TRUE(std::holds_alternative<BinaryCrossEntropyConfig>(
      loss_config_from_json(json{{"type", "binary_cross_entropy"}})));
  EXPECT_TRUE(
      std::holds_alternative<SoftDiceConfig>(loss_config_from_json(json{{"type", "soft_dice"}})));
}

TEST(TrainConfig, RejectsUnknownKeysTypesAndValues) {
  const auto loss = [](const json& j) { loss_config_from_json(j); };
  EXPECT_EQ(error_of(loss, json{{"type", "hinge"}}),
            "loss key 'type': expected one of cross_entropy, binary_cross_entropy, soft_dice, "
            "dice_cross_entropy, mean_squared_error, got 'hinge'");
  EXPECT_NE(error_of(loss, json{{"type", "cross_entropy"}, {"ignore", 3}}).find("ignore"),
            std::string::npos);
  EXPECT_NE(error_of(loss, json{{"type", "cross_entropy"}, {"class_weights", {1, -1}}})
                .find("class_weights"),
            std::string::npos);
  EXPECT_NE(error_of(loss, json{{"type", "soft_dice"}, {"smooth", -1}}).find("smooth"),
            std::string::npos);
  EXPECT_EQ(error_of(loss, json{{"kind", "x"}}), "loss key 'type': expected a string, got none");
  const auto optimizer = [](const json& j) { optimizer_config_from_json(j); };
  EXPECT_NE(error_of(optimizer, json{{"type", "rmsprop"}}).find("rmsprop"), std::string::npos);
  EXPECT_NE(error_of(optimizer, json{{"learning_rate", "fast"}}).find("learning_rate"),
            std::string::npos);
  const auto schedule = [](const json& j) { schedule_config_from_json(j); };
  EXPECT_NE(error_of(schedule, json{{"step_size", 0}}).find("step_size"), std::string::npos);
  const auto augment = [](const json& j) { augment_config_from_json(j); };
  EXPECT_NE(error_of(augment, json{{"flip_probability", 2}}).find("flip probability"),
            std::string::npos);
  EXPECT_NE(error_of(augment, json{{"flip", 0.5}}).find("flip"), std::string::npos);
  const auto init = [](const json& j) { init_config_from_json(j); };
  EXPECT_NE(error_of(init, json{{"scheme", "orthogonal"}}).find("orthogonal"), std::string::npos);
}

TEST(TrainConfig, ParsesOptimizerScheduleAugmentAndInit) {
  const auto o = optimizer_config_from_json(
      json::parse(R"({"type": "sgd", "learning_rate": 0.01, "momentum": 0.99, "nesterov": true})"));
  EXPECT_EQ(o.type, OptimizerType::sgd);
  EXPECT_TRUE(o.nesterov);
  EXPECT_EQ(o.momentum, 0.99);
  const auto s = schedule_config_from_json(
      json::parse(R"({"type": "polynomial", "total_steps": 1000, "warmup_steps": 10})"));
  EXPECT_EQ(s.type, ScheduleType::polynomial);
  EXPECT_EQ(s.total_steps, 1000);
  EXPECT_EQ(s.exponent, 0.9);
  const auto a = augment_config_from_json(json::parse(R"({"elastic_probability": 0.2})"));
  EXPECT_EQ(a.elastic_probability, 0.2);
  const auto i = init_config_from_json(
      json::parse(R"({"scheme": "xavier_uniform", "bias": "pytorch_default"})"));
  EXPECT_EQ(i.scheme, InitScheme::xavier_uniform);
  EXPECT_EQ(i.bias, BiasInit::pytorch_default);
}

}  // namespace
}  // namespace cajal::engine::train
