#include "models/model_spec.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace cajal::models {
namespace {

// Reads an object's keys by name and rejects the ones nobody read.
class Keys {
 public:
  Keys(const nlohmann::json& object, std::string where)
      : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) {
      throw Error(where_, "a JSON object", object_.dump());
    }
  }
  const nlohmann::json* find(const std::string& key) {
    read_.insert(key);
    return object_.contains(key) ? &object_.at(key) : nullptr;
  }
  const nlohmann::json& at(const std::string& key) {
    const auto* value = find(key);
    if (value == nullptr) {
      throw Error(where_ + ": key '" + key + "'", "present", "missing");
    }
    return *value;
  }
  std::string text(const std::string& key, const std::string* fallback = nullptr) {
    const auto* value = find(key);
    if (value == nullptr && fallback != nullptr) {
      return *fallback;
    }
    const auto& v = value ? *value : at(key);
    if (!v.is_string()) {
      fail(key, "a string", v.dump());
    }
    return v.get<std::string>();
  }
  std::vector<std::string> names(const std::string& key, bool required) {
    const auto* value = find(key);
    if (value == nullptr && !required) {
      return {};
    }
    const auto& v = value ? *value : at(key);
    std::vector<std::string> result;
    if (!v.is_array()) {
      fail(key, "an array of strings", v.dump());
    }
    for (const auto& item : v) {
      if (!item.is_string() || item.get<std::string>().empty()) {
        fail(key, "an array of non-empty strings", v.dump());
      }
      result.push_back(item.get<std::string>());
    }
    return result;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& got) const {
    throw Error(where_ + ": key '" + key + "'", expected, got);
  }
  void finish() const {
    for (const auto& [key, value] : object_.items()) {
      if (!read_.contains(key)) {
        throw Error(where_ + ": unknown key '" + key + "'", "one of " + known(), "'" + key + "'");
      }
    }
  }

 private:
  std::string known() const {
    std::string text;
    for (const auto& key : read_) {
      text += (text.empty() ? "" : ", ") + key;
    }
    return text;
  }
  const nlohmann::json& object_;
  std::string where_;
  std::set<std::string> read_;
};

LayerSpec parse_layer(const nlohmann::json& doc, const std::string& where) {
  Keys keys(doc, where);
  LayerSpec layer;
  layer.name = keys.text("name");
  if (layer.name.empty()) {
    keys.fail("name", "a non-empty string", "\"\"");
  }
  const std::string type = keys.text("type");
  try {
    layer.type = engine::parse_layer_type(type);
  } catch (const Error& e) {
    throw Error(where + " '" + layer.name + "': " + e.what());
  }
  layer.inputs = keys.names("inputs", true);
  layer.output = keys.text("output", &layer.name);
  const auto* params = keys.find("params");
  layer.params = params ? *params : nlohmann::json::object();
  keys.finish();
  return layer;
}

std::vector<double> positive_numbers(Keys& keys, const std::string& key, std::size_t count) {
  const auto* value = keys.find(key);
  std::vector<double> result;
  if (value == nullptr) {
    return result;
  }
  const auto expected = "an array of " + std::to_string(count) + " positive numbers";
  if (!value->is_array() || value->size() != count) {
    keys.fail(key, expected, value->dump());
  }
  for (const auto& item : *value) {
    if (!item.is_number() || !(item.get<double>() > 0)) {
      keys.fail(key, expected, value->dump());
    }
    result.push_back(item.get<double>());
  }
  return result;
}

double number_at(Keys& keys, const char* key) {
  const auto& v = keys.at(key);
  if (!v.is_number()) {
    keys.fail(key, "a number", v.dump());
  }
  return v.get<double>();
}

// A number that may be left out; `fallback` then.
double number_or(Keys& keys, const char* key, double fallback) {
  return keys.find(key) == nullptr ? fallback : number_at(keys, key);
}

bool flag_or(Keys& keys, const char* key, bool fallback) {
  const auto* v = keys.find(key);
  if (v == nullptr) {
    return fallback;
  }
  if (!v->is_boolean()) {
    keys.fail(key, "true or false", v->dump());
  }
  return v->get<bool>();
}

Normalization parse_normalization(const nlohmann::json& doc, const std::string& where) {
  Keys keys(doc, where);
  Normalization n;
  n.kind = keys.text("kind");
  if (n.kind == "ct") {
    n.clip_min = number_at(keys, "clip_min");
    n.clip_max = number_at(keys, "clip_max");
    n.mean = number_at(keys, "mean");
    n.std = number_at(keys, "std");
    if (!(n.clip_min < n.clip_max) || !(n.std > 0)) {
      throw Error(where, "clip_min < clip_max and std > 0", doc.dump());
    }
  } else if (n.kind == "percentile") {
    n.lower_percentile = number_or(keys, "lower_percentile", n.lower_percentile);
    n.upper_percentile = number_or(keys, "upper_percentile", n.upper_percentile);
    if (!(n.lower_percentile >= 0 && n.lower_percentile < n.upper_percentile &&
          n.upper_percentile <= 100)) {
      throw Error(where, "0 <= lower_percentile < upper_percentile <= 100", doc.dump());
    }
  } else if (n.kind != "none" && n.kind != "zscore") {
    keys.fail("kind", "one of 'none', 'zscore', 'ct', 'percentile'", "'" + n.kind + "'");
  }
  keys.finish();
  return n;
}

Crop parse_crop(const nlohmann::json& doc, const std::string& where) {
  Keys keys(doc, where);
  Crop crop;
  crop.kind = keys.text("kind");
  if (crop.kind != "none" && crop.kind != "body" && crop.kind != "foreground") {
    keys.fail("kind", "one of 'none', 'body', 'foreground'", "'" + crop.kind + "'");
  }
  if (crop.kind == "body") {
    crop.threshold = number_or(keys, "threshold", crop.threshold);
  }
  crop.margin_mm = number_or(keys, "margin_mm", crop.margin_mm);
  if (!(crop.margin_mm >= 0)) {
    keys.fail("margin_mm", "a number >= 0", std::to_string(crop.margin_mm));
  }
  keys.finish();
  return crop;
}

// {"liver": {"keep_largest_component": true, ...}, ...}: keys are label names.
std::vector<LabelPostprocessing> parse_postprocessing(const nlohmann::json& doc,
                                                      const std::vector<std::string>& labels,
                                                      const std::string& where) {
  if (!doc.is_object()) {
    throw Error(where, "an object of label name -> rules", doc.dump());
  }
  std::vector<LabelPostprocessing> rules;
  for (const auto& [label, rule_doc] : doc.items()) {
    const auto found = std::find(labels.begin(), labels.end(), label);
    if (found == labels.end() || found == labels.begin()) {
      throw Error(where + ": label '" + label + "'",
                  "one of the run configuration's labels other than the first (background)",
                  "'" + label + "'");
    }
    Keys keys(rule_doc, where + "." + label);
    LabelPostprocessing rule;
    rule.label = label;
    rule.keep_largest_component = flag_or(keys, "keep_largest_component", false);
    rule.fill_holes = flag_or(keys, "fill_holes", false);
    rule.min_component_mm3 = number_or(keys, "min_component_mm3", 0.0);
    if (!(rule.min_component_mm3 >= 0)) {
      keys.fail("min_component_mm3", "a number >= 0", std::to_string(rule.min_component_mm3));
    }
    keys.finish();
    rules.push_back(rule);
  }
  return rules;
}

RunConfig parse_run(const nlohmann::json& doc, const std::string& where) {
  Keys keys(doc, where);
  RunConfig run;
  const std::string segmentation = "segmentation";
  run.task = keys.text("task", &segmentation);
  if (run.task != "segmentation" && run.task != "classification") {
    keys.fail("task", "'segmentation' or 'classification'", "'" + run.task + "'");
  }
  const auto integer = [&](const char* key, std::int64_t lo, std::int64_t hi) {
    const auto& v = keys.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi) {
      keys.fail(key, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi),
                v.dump());
    }
    return v.get<std::int64_t>();
  };
  run.input_channels = integer("input_channels", 1, 1 << 16);
  run.spatial_dims = integer("spatial_dims", 2, 3);
  const auto rank = static_cast<std::size_t>(run.spatial_dims);
  for (const double size : positive_numbers(keys, "patch_size", rank)) {
    if (size != static_cast<double>(static_cast<std::int64_t>(size))) {
      keys.fail("patch_size", "integers", doc.at("patch_size").dump());
    }
    run.patch_size.push_back(static_cast<std::int64_t>(size));
  }
  run.target_spacing = positive_numbers(keys, "target_spacing", rank);
  const std::string none;
  run.orientation = keys.text("orientation", &none);
  if (!run.orientation.empty() && run.orientation.size() != 3) {
    keys.fail("orientation", "three letters such as \"RAS\"", "\"" + run.orientation + "\"");
  }
  if (const auto* normalization = keys.find("normalization")) {
    run.normalization = parse_normalization(*normalization, where + ".normalization");
  }
  if (const auto* crop = keys.find("crop")) {
    run.crop = parse_crop(*crop, where + ".crop");
  }
  run.labels = keys.names("labels", false);
  if (const auto* postprocessing = keys.find("postprocessing")) {
    run.postprocessing =
        parse_postprocessing(*postprocessing, run.labels, where + ".postprocessing");
  }
  run.mirror_axes = keys.names("mirror_axes", false);
  for (std::size_t a = 0; a < run.mirror_axes.size(); ++a) {
    const std::string& axis = run.mirror_axes[a];
    const bool known = axis == "x" || axis == "y" || (axis == "z" && run.spatial_dims == 3);
    if (!known ||
        std::find(run.mirror_axes.begin(), run.mirror_axes.begin() + static_cast<std::ptrdiff_t>(a),
                  axis) != run.mirror_axes.begin() + static_cast<std::ptrdiff_t>(a)) {
      keys.fail("mirror_axes",
                std::string("distinct axes of the model's grid: \"x\", \"y\"") +
                    (run.spatial_dims == 3 ? ", \"z\"" : ""),
                doc.at("mirror_axes").dump());
    }
  }
  run.modality = keys.text("modality", &none);
  if (run.modality.empty() && run.normalization.kind == "ct") {
    run.modality = "CT";
  }
  if (!run.modality.empty() && run.modality != "CT" && run.modality != "MR") {
    keys.fail("modality", "\"CT\" or \"MR\"", "\"" + run.modality + "\"");
  }
  keys.finish();
  return run;
}

}  // namespace

ModelSpec parse_model_spec(const nlohmann::json& doc, const std::string& source) {
  Keys keys(doc, source);
  const auto& format = keys.at("format");
  if (format != "cajal-model") {
    keys.fail("format", "\"cajal-model\"", format.dump());
  }
  const auto& version = keys.at("format_version");
  if (version != kFormatVersion) {
    keys.fail("format_version", std::to_string(kFormatVersion), version.dump());
  }
  ModelSpec spec;
  spec.inputs = keys.names("inputs", true);
  spec.outputs = keys.names("outputs", true);
  const auto& layers = keys.at("layers");
  if (!layers.is_array() || layers.empty()) {
    keys.fail("layers", "a non-empty array of layers", layers.is_array() ? "[]" : layers.dump());
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    spec.layers.push_back(parse_layer(layers[i], source + ": layers[" + std::to_string(i) + "]"));
  }
  spec.run = parse_run(keys.at("run"), source + ": run");
  keys.finish();
  return spec;
}

ModelCard parse_model_card(const nlohmann::json& doc, const std::string& source) {
  Keys keys(doc, source);
  ModelCard card;
  card.name = keys.text("name");
  card.version = keys.text("version");
  card.intended_use = keys.text("intended_use");
  card.metrics = keys.at("metrics");
  for (const auto& [name, value] : card.metrics.items()) {
    if (!value.is_number()) {
      keys.fail("metrics", "an object of numbers", card.metrics.dump());
    }
  }
  if (!card.metrics.is_object()) {
    keys.fail("metrics", "an object of numbers", card.metrics.dump());
  }
  card.provenance = keys.at("provenance");
  if (!card.provenance.is_object()) {
    keys.fail("provenance", "an object", card.provenance.dump());
  }
  keys.finish();
  return card;
}

}  // namespace cajal::models
