#include "engine/params.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cajal::engine {
namespace {

// Larger sizes are a damaged or hostile file, not a network: products of dims stay in range.
constexpr std::int64_t kMaxValue = std::int64_t{1} << 30;

bool is_integer_at_least(const nlohmann::json& value, std::int64_t min) {
  return value.is_number_integer() && value.get<std::int64_t>() >= min &&
         value.get<std::int64_t>() <= kMaxValue;
}

}  // namespace

ParamReader::ParamReader(const nlohmann::json& params, std::string context)
    : params_(params), context_(std::move(context)) {
  if (!params_.is_object()) {
    throw Error(context_ + ": params", "a JSON object", params_.dump());
  }
}

void ParamReader::fail(const std::string& key, const std::string& expected,
                       const std::string& got) const {
  throw Error(context_ + ": key '" + key + "'", expected, got);
}

std::int64_t ParamReader::integer(const std::string& key, std::int64_t min) {
  read_.insert(key);
  if (!params_.contains(key)) {
    fail(key, "an integer from " + std::to_string(min) + " to 2^30",
         "nothing (the key is required)");
  }
  const auto& value = params_.at(key);
  if (!is_integer_at_least(value, min)) {
    fail(key, "an integer from " + std::to_string(min) + " to 2^30", value.dump());
  }
  return value.get<std::int64_t>();
}

std::int64_t ParamReader::integer(const std::string& key, std::int64_t fallback, std::int64_t min) {
  if (!params_.contains(key)) {
    read_.insert(key);
    return fallback;
  }
  return integer(key, min);
}

double ParamReader::number(const std::string& key, double fallback, double min_exclusive) {
  const double value = number(key, fallback);
  if (!(value > min_exclusive)) {
    fail(key, "a number > " + std::to_string(min_exclusive), params_.at(key).dump());
  }
  return value;
}

double ParamReader::number(const std::string& key, double fallback) {
  read_.insert(key);
  if (!params_.contains(key)) {
    return fallback;
  }
  const auto& value = params_.at(key);
  if (!value.is_number()) {
    fail(key, "a number", value.dump());
  }
  return value.get<double>();
}

bool ParamReader::boolean(const std::string& key, bool fallback) {
  read_.insert(key);
  if (!params_.contains(key)) {
    return fallback;
  }
  const auto& value = params_.at(key);
  if (!value.is_boolean()) {
    fail(key, "true or false", value.dump());
  }
  return value.get<bool>();
}

std::string ParamReader::choice(const std::string& key, const std::string& fallback,
                                std::initializer_list<const char*> allowed) {
  read_.insert(key);
  std::string names;
  for (const char* name : allowed) {
    names += (names.empty() ? "" : ", ") + std::string("'") + name + "'";
  }
  if (!params_.contains(key)) {
    return fallback;
  }
  const auto& value = params_.at(key);
  if (value.is_string()) {
    for (const char* name : allowed) {
      if (value.get<std::string>() == name) {
        return name;
      }
    }
  }
  fail(key, "one of " + names, value.dump());
}

bool ParamReader::has(const std::string& key) const {
  return params_.contains(key);
}

const nlohmann::json& ParamReader::object(const std::string& key) {
  read_.insert(key);
  if (!params_.contains(key)) {
    fail(key, "a JSON object", "nothing (the key is required)");
  }
  const auto& value = params_.at(key);
  if (!value.is_object()) {
    fail(key, "a JSON object", value.dump());
  }
  return value;
}

std::string ParamReader::text(const std::string& key, const std::string& fallback) {
  read_.insert(key);
  if (!params_.contains(key)) {
    return fallback;
  }
  const auto& value = params_.at(key);
  if (!value.is_string() || value.get<std::string>().empty()) {
    fail(key, "a non-empty string", value.dump());
  }
  return value.get<std::string>();
}

std::vector<std::string> ParamReader::texts(const std::string& key) {
  read_.insert(key);
  std::vector<std::string> result;
  if (!params_.contains(key)) {
    return result;
  }
  const auto& value = params_.at(key);
  if (!value.is_array()) {
    fail(key, "an array of non-empty strings", value.dump());
  }
  for (const auto& item : value) {
    if (!item.is_string() || item.get<std::string>().empty()) {
      fail(key, "an array of non-empty strings", value.dump());
    }
    result.push_back(item.get<std::string>());
  }
  return result;
}

Dims ParamReader::spatial_array(const std::string& key, std::int64_t min) {
  read_.insert(key);
  const std::string expected =
      "an array of 2 or 3 integers from " + std::to_string(min) + " to 2^30";
  if (!params_.contains(key)) {
    fail(key, expected, "nothing (the key is required)");
  }
  const auto& value = params_.at(key);
  if (!value.is_array() || value.size() < 2 || value.size() > 3) {
    fail(key, expected, value.dump());
  }
  Dims dims;
  for (const auto& item : value) {
    if (!is_integer_at_least(item, min)) {
      fail(key, expected, value.dump());
    }
    dims.push_back(item.get<std::int64_t>());
  }
  return dims;
}

Dims ParamReader::spatial(const std::string& key, std::size_t rank, std::int64_t fallback,
                          std::int64_t min) {
  read_.insert(key);
  const std::string expected = "an integer or an array of " + std::to_string(rank) +
                               " integers, each from " + std::to_string(min) + " to 2^30";
  if (!params_.contains(key)) {
    return Dims(rank, fallback);
  }
  const auto& value = params_.at(key);
  if (is_integer_at_least(value, min)) {
    return Dims(rank, value.get<std::int64_t>());
  }
  if (!value.is_array() || value.size() != rank) {
    fail(key, expected, value.dump());
  }
  Dims dims;
  for (const auto& item : value) {
    if (!is_integer_at_least(item, min)) {
      fail(key, expected, value.dump());
    }
    dims.push_back(item.get<std::int64_t>());
  }
  return dims;
}

void ParamReader::finish() const {
  for (const auto& [key, value] : params_.items()) {
    if (!read_.contains(key)) {
      std::string known;
      for (const auto& name : read_) {
        known += (known.empty() ? "" : ", ") + name;
      }
      throw Error(context_ + ": unknown key '" + key + "'",
                  known.empty() ? "no keys" : "one of " + known, "'" + key + "'");
    }
  }
}

}  // namespace cajal::engine
