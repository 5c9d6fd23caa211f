// The training configs from JSON (issue 4): named keys with the struct's field names, defaults
// from the struct, unknown keys rejected, every failure a cajal::Error naming the key.
//
//   loss:      {"type": "cross_entropy" | "binary_cross_entropy" | "soft_dice" |
//               "dice_cross_entropy" | "mean_squared_error", ...fields}; Dice + CE nests
//              {"cross_entropy": {...}, "dice": {...}, "weight_cross_entropy", "weight_dice"}
//   optimizer: {"type": "sgd" | "adam" | "adamw" | "nadam", "learning_rate", ...}
//   schedule:  {"type": "constant" | "step" | "polynomial" | "cosine", "base_learning_rate", ...}
//   augment:   {"flip_probability", ...}
//   init:      {"scheme": "kaiming_normal" | ..., "mode": "fan_in" | "fan_out",
//               "negative_slope", "xavier_gain", "bias": "zero" | "pytorch_default"}
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "engine/train/augment.h"
#include "engine/train/init.h"
#include "engine/train/loss.h"
#include "engine/train/optimizer.h"
#include "engine/train/schedule.h"

namespace cajal::engine::train {

LossConfig loss_config_from_json(const nlohmann::json& json);
OptimizerConfig optimizer_config_from_json(const nlohmann::json& json);
ScheduleConfig schedule_config_from_json(const nlohmann::json& json);
AugmentConfig augment_config_from_json(const nlohmann::json& json);
InitConfig init_config_from_json(const nlohmann::json& json);

}  // namespace cajal::engine::train
