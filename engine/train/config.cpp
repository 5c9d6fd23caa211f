#include "engine/train/config.h"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/params.h"

namespace cajal::engine::train {
namespace {

constexpr std::int64_t kMinInteger = -(std::int64_t{1} << 30);

// The JSON without "class_weights", which ParamReader does not read, and the weights.
struct WithWeights {
  nlohmann::json rest;
  std::vector<float> weights;
};

WithWeights take_weights(const nlohmann::json& json, const std::string& context) {
  if (!json.is_object())
    throw Error(context, "a JSON object", json.dump());
  WithWeights out{json, {}};
  if (!json.contains("class_weights"))
    return out;
  const auto& w = json.at("class_weights");
  const auto fail = [&] {
    throw Error(context + " key 'class_weights'", "an array of numbers >= 0", w.dump());
  };
  if (!w.is_array())
    fail();
  for (const auto& v : w) {
    if (!v.is_number() || v.get<double>() < 0.0)
      fail();
    out.weights.push_back(v.get<float>());
  }
  out.rest.erase("class_weights");
  return out;
}

CrossEntropyConfig cross_entropy_from(const nlohmann::json& json, const std::string& context) {
  const auto [rest, weights] = take_weights(json, context);
  ParamReader r(rest, context);
  r.choice("type", "cross_entropy", {"cross_entropy"});
  CrossEntropyConfig c{weights, r.integer("ignore_index", -100, kMinInteger)};
  r.finish();
  return c;
}

SoftDiceConfig dice_from(const nlohmann::json& json, const std::string& context) {
  ParamReader r(json, context);
  r.choice("type", "soft_dice", {"soft_dice"});
  SoftDiceConfig c;
  c.smooth = r.number("smooth", c.smooth);
  if (c.smooth < 0.0)
    r.fail("smooth", "a number >= 0", std::to_string(c.smooth));
  c.batch_dice = r.boolean("batch_dice", c.batch_dice);
  c.include_background = r.boolean("include_background", c.include_background);
  c.ignore_index = r.integer("ignore_index", c.ignore_index, kMinInteger);
  r.finish();
  return c;
}

std::string type_of(const nlohmann::json& json, const std::string& context) {
  if (!json.is_object() || !json.contains("type") || !json.at("type").is_string()) {
    throw Error(context + " key 'type'", "a string",
                json.is_object() && json.contains("type") ? json.at("type").dump() : "none");
  }
  return json.at("type").get<std::string>();
}

}  // namespace

LossConfig loss_config_from_json(const nlohmann::json& json) {
  const std::string context = "loss";
  const auto type = type_of(json, context);
  if (type == "cross_entropy")
    return cross_entropy_from(json, context);
  if (type == "soft_dice")
    return dice_from(json, context);
  if (type == "binary_cross_entropy") {
    const auto [rest, weights] = take_weights(json, context);
    ParamReader r(rest, context);
    r.choice("type", type, {"binary_cross_entropy"});
    r.finish();
    return BinaryCrossEntropyConfig{weights};
  }
  if (type == "mean_squared_error") {
    ParamReader r(json, context);
    r.choice("type", type, {"mean_squared_error"});
    r.finish();
    return MeanSquaredErrorConfig{};
  }
  if (type == "dice_cross_entropy") {
    nlohmann::json rest = json;
    DiceCrossEntropyConfig c;
    if (rest.contains("cross_entropy")) {
      c.cross_entropy = cross_entropy_from(rest.at("cross_entropy"), "loss 'cross_entropy'");
      rest.erase("cross_entropy");
    }
    if (rest.contains("dice")) {
      c.dice = dice_from(rest.at("dice"), "loss 'dice'");
      rest.erase("dice");
    }
    ParamReader r(rest, context);
    r.choice("type", type, {"dice_cross_entropy"});
    c.weight_cross_entropy = r.number("weight_cross_entropy", 1.0);
    c.weight_dice = r.number("weight_dice", 1.0);
    r.finish();
    return c;
  }
  throw Error("loss key 'type'",
              "one of cross_entropy, binary_cross_entropy, soft_dice, dice_cross_entropy, "
              "mean_squared_error",
              "'" + type + "'");
}

OptimizerConfig optimizer_config_from_json(const nlohmann::json& json) {
  if (!json.is_object())
    throw Error("optimizer", "a JSON object", json.dump());
  ParamReader r(json, "optimizer");
  OptimizerConfig c;
  const auto type = r.choice("type", "sgd", {"sgd", "adam", "adamw", "nadam"});
  c.type = type == "sgd"     ? OptimizerType::sgd
           : type == "adam"  ? OptimizerType::adam
           : type == "adamw" ? OptimizerType::adamw
                             : OptimizerType::nadam;
  c.learning_rate = r.number("learning_rate", c.learning_rate, 0.0);
  c.weight_decay = r.number("weight_decay", c.weight_decay);
  c.momentum = r.number("momentum", c.momentum);
  c.dampening = r.number("dampening", c.dampening);
  c.nesterov = r.boolean("nesterov", c.nesterov);
  c.beta1 = r.number("beta1", c.beta1);
  c.beta2 = r.number("beta2", c.beta2);
  c.eps = r.number("eps", c.eps);
  c.momentum_decay = r.number("momentum_decay", c.momentum_decay);
  r.finish();
  return c;
}

ScheduleConfig schedule_config_from_json(const nlohmann::json& json) {
  if (!json.is_object())
    throw Error("schedule", "a JSON object", json.dump());
  ParamReader r(json, "schedule");
  ScheduleConfig c;
  const auto type = r.choice("type", "constant", {"constant", "step", "polynomial", "cosine"});
  c.type = type == "constant"     ? ScheduleType::constant
           : type == "step"       ? ScheduleType::step
           : type == "polynomial" ? ScheduleType::polynomial
                                  : ScheduleType::cosine;
  c.base_learning_rate = r.number("base_learning_rate", c.base_learning_rate);
  c.step_size = r.integer("step_size", c.step_size, 1);
  c.gamma = r.number("gamma", c.gamma);
  c.total_steps = r.integer("total_steps", c.total_steps, 1);
  c.exponent = r.number("exponent", c.exponent);
  c.eta_min = r.number("eta_min", c.eta_min);
  c.warmup_steps = r.integer("warmup_steps", c.warmup_steps, 0);
  c.warmup_start_factor = r.number("warmup_start_factor", c.warmup_start_factor, 0.0);
  r.finish();
  validate(c);
  return c;
}

AugmentConfig augment_config_from_json(const nlohmann::json& json) {
  if (!json.is_object())
    throw Error("augmentation", "a JSON object", json.dump());
  ParamReader r(json, "augmentation");
  AugmentConfig c;
  const auto read = [&](const char* key, double& field) { field = r.number(key, field); };
  read("flip_probability", c.flip_probability);
  read("rotate90_probability", c.rotate90_probability);
  read("rotate_probability", c.rotate_probability);
  read("max_rotation_degrees", c.max_rotation_degrees);
  read("scale_probability", c.scale_probability);
  read("min_scale", c.min_scale);
  read("max_scale", c.max_scale);
  read("elastic_probability", c.elastic_probability);
  read("elastic_alpha", c.elastic_alpha);
  read("elastic_sigma", c.elastic_sigma);
  read("intensity_scale_probability", c.intensity_scale_probability);
  read("min_intensity_scale", c.min_intensity_scale);
  read("max_intensity_scale", c.max_intensity_scale);
  read("intensity_shift_probability", c.intensity_shift_probability);
  read("max_intensity_shift", c.max_intensity_shift);
  read("noise_probability", c.noise_probability);
  read("max_noise_stddev", c.max_noise_stddev);
  r.finish();
  validate(c);
  return c;
}

InitConfig init_config_from_json(const nlohmann::json& json) {
  if (!json.is_object())
    throw Error("initialisation", "a JSON object", json.dump());
  ParamReader r(json, "initialisation");
  InitConfig c;
  const auto scheme = r.choice(
      "scheme", "kaiming_normal",
      {"kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "pytorch_default"});
  c.scheme = scheme == "kaiming_uniform"  ? InitScheme::kaiming_uniform
             : scheme == "kaiming_normal" ? InitScheme::kaiming_normal
             : scheme == "xavier_uniform" ? InitScheme::xavier_uniform
             : scheme == "xavier_normal"  ? InitScheme::xavier_normal
                                          : InitScheme::pytorch_default;
  c.mode = r.choice("mode", "fan_in", {"fan_in", "fan_out"}) == "fan_in" ? FanMode::fan_in
                                                                         : FanMode::fan_out;
  c.negative_slope = r.number("negative_slope", c.negative_slope);
  c.xavier_gain = r.number("xavier_gain", c.xavier_gain, 0.0);
  c.bias = r.choice("bias", "zero", {"zero", "pytorch_default"}) == "zero"
               ? BiasInit::zero
               : BiasInit::pytorch_default;
  r.finish();
  return c;
}

}  // namespace cajal::engine::train
