// Reads the JSON fixtures of tools/export_torch_train_fixtures.py and compares tensors.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"

namespace cajal::engine::train::testing {

// tests/train/fixtures/<name>.json
nlohmann::json read_fixture(const std::string& name);
// {"dims": [...], "values": [...]}
Tensor tensor_from_json(const nlohmann::json& j);
// max |got - expected| / max(max |expected|, tiny); dims must match (else +inf).
double relative_error(const Tensor& got, const Tensor& expected);

}  // namespace cajal::engine::train::testing
