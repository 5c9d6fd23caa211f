// ParamReader: a layer's named keys from JSON, with defaults, validation, and unknown keys
// rejected. Every failure is a cajal::Error naming the layer and the key.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/tensor.h"

namespace cajal::engine {

class ParamReader {
 public:
  // `context` names the owner in messages, e.g. "layer 'enc0.conv1' (convolution)".
  ParamReader(const nlohmann::json& params, std::string context);

  // Required when no fallback is given; values below `min` are rejected.
  std::int64_t integer(const std::string& key, std::int64_t min);
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min);
  double number(const std::string& key, double fallback, double min_exclusive);
  double number(const std::string& key, double fallback);
  bool boolean(const std::string& key, bool fallback);
  std::string choice(const std::string& key, const std::string& fallback,
                     std::initializer_list<const char*> allowed);
  // A required array of 2 or 3 positive integers; its length sets the layer's spatial rank.
  Dims spatial_array(const std::string& key, std::int64_t min);
  // One integer for every spatial axis, or an array of `rank` integers.
  Dims spatial(const std::string& key, std::size_t rank, std::int64_t fallback, std::int64_t min);

  // For configs beyond layers (training): whether a key is present; a required JSON object; a
  // non-empty string; an array of non-empty strings (empty when absent).
  bool has(const std::string& key) const;
  const nlohmann::json& object(const std::string& key);
  std::string text(const std::string& key, const std::string& fallback);
  std::vector<std::string> texts(const std::string& key);

  // Throws if the JSON holds a key that no call above read.
  void finish() const;
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& got) const;

 private:
  const nlohmann::json& params_;
  std::string context_;
  std::set<std::string> read_;
};

}  // namespace cajal::engine
