#include "pipeline/train_config.h"

#include <fstream>
#include <set>
#include <utility>

#include "core/error.h"
#include "engine/train/config.h"

namespace cajal::pipeline {
namespace {

using nlohmann::json;
namespace train = engine::train;

// An object's keys by name, with defaults; a key nobody read is an error at finish().
class Section {
 public:
  Section(const json& object, std::string where) : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) {
      throw Error(where_, "a JSON object", object_.dump());
    }
  }
  ~Section() = default;
  Section(const Section&) = delete;
  Section& operator=(const Section&) = delete;

  bool has(const std::string& key) const { return object_.contains(key); }
  const json* find(const std::string& key) {
    read_.insert(key);
    return object_.contains(key) ? &object_.at(key) : nullptr;
  }
  const json& object(const std::string& key) {
    const json* value = find(key);
    if (value == nullptr) {
      fail(key, "present", "missing");
    }
    if (!value->is_object()) {
      fail(key, "a JSON object", value->dump());
    }
    return *value;
  }
  double number(const std::string& key, double fallback, double min, double max) {
    const json* value = find(key);
    if (value == nullptr) {
      return fallback;
    }
    if (!value->is_number() || value->get<double>() < min || value->get<double>() > max) {
      fail(key, "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
           value->dump());
    }
    return value->get<double>();
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min) {
    const json* value = find(key);
    if (value == nullptr) {
      return fallback;
    }
    if (!value->is_number_integer() || value->get<std::int64_t>() < min) {
      fail(key, "an integer >= " + std::to_string(min), value->dump());
    }
    return value->get<std::int64_t>();
  }
  bool boolean(const std::string& key, bool fallback) {
    const json* value = find(key);
    if (value == nullptr) {
      return fallback;
    }
    if (!value->is_boolean()) {
      fail(key, "true or false", value->dump());
    }
    return value->get<bool>();
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const json* value = find(key);
    if (value == nullptr) {
      return fallback;
    }
    if (!value->is_string() || value->get<std::string>().empty()) {
      fail(key, "a non-empty string", value->dump());
    }
    return value->get<std::string>();
  }
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) {
    const std::string value = text(key, fallback);
    std::string list;
    for (const auto& a : allowed) {
      if (a == value) {
        return value;
      }
      list += (list.empty() ? "" : ", ") + a;
    }
    fail(key, "one of " + list, "\"" + value + "\"");
  }
  std::vector<float> floats(const std::string& key) {
    const json* value = find(key);
    std::vector<float> result;
    if (value == nullptr) {
      return result;
    }
    if (!value->is_array()) {
      fail(key, "an array of numbers", value->dump());
    }
    for (const auto& item : *value) {
      if (!item.is_number()) {
        fail(key, "an array of numbers", value->dump());
      }
      result.push_back(item.get<float>());
    }
    return result;
  }
  std::vector<std::string> texts(const std::string& key) {
    const json* value = find(key);
    std::vector<std::string> result;
    if (value == nullptr) {
      return result;
    }
    if (!value->is_array()) {
      fail(key, "an array of strings", value->dump());
    }
    for (const auto& item : *value) {
      if (!item.is_string() || item.get<std::string>().empty()) {
        fail(key, "an array of non-empty strings", value->dump());
      }
      result.push_back(item.get<std::string>());
    }
    return result;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& got) const {
    throw Error(where_ + ": key '" + key + "'", expected, got);
  }
  const std::string& where() const { return where_; }
  void finish() const {
    for (const auto& [key, value] : object_.items()) {
      if (!read_.contains(key)) {
        std::string known;
        for (const auto& k : read_) {
          known += (known.empty() ? "" : ", ") + k;
        }
        throw Error(where_ + ": unknown key '" + key + "'", "one of " + known, "'" + key + "'");
      }
    }
  }

 private:
  const json& object_;
  std::string where_;
  std::set<std::string> read_;
};

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& text) {
  const std::filesystem::path path(text);
  return path.is_absolute() ? path : (base / path).lexically_normal();
}

// One of engine/train/config.h's parsers on `section`, its errors prefixed with where it is.
template <typename Parse>
auto parse_section(const json& section, const std::string& where, Parse parse) {
  try {
    return parse(section);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

TrainDataConfig parse_data(Section& s, const std::filesystem::path& base) {
  TrainDataConfig c;
  c.kind = s.choice("type", "idx", {"idx", "shapes2d"});
  if (c.kind == "idx") {
    c.train_images = resolve(base, s.text("train_images", ""));
    c.train_labels = resolve(base, s.text("train_labels", ""));
    if (s.has("test_images") != s.has("test_labels")) {
      s.fail("test_images", "test_images and test_labels together", "only one of them");
    }
    if (s.has("test_images")) {
      c.test_images = resolve(base, s.text("test_images", ""));
      c.test_labels = resolve(base, s.text("test_labels", ""));
    }
    c.pad = s.integer("pad", 0, 0);
    c.scale = s.number("scale", c.scale, -1e6, 1e6);
    c.mean = s.number("mean", c.mean, -1e6, 1e6);
    c.std = s.number("std", c.std, 1e-12, 1e6);
    c.limit = s.integer("limit", 0, 0);
  } else {
    c.count = s.integer("count", 1000, 1);
    c.test_count = s.integer("test_count", 100, 0);
    c.size = s.integer("size", c.size, 16);
    c.classes = s.integer("classes", c.classes, 2);
    c.noise = s.number("noise", c.noise, 0.0, 10.0);
    c.data_seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0));
  }
  return c;
}

}  // namespace

TrainConfig parse_train_config(const nlohmann::json& doc, const std::filesystem::path& source) {
  TrainConfig config;
  config.source = source;
  const std::filesystem::path base = source.parent_path();
  Section top(doc, "'" + source.string() + "'");
  const json& model = top.object("model");
  if (model.contains("spec")) {
    Section spec(model, top.where() + ": model");
    config.architecture = {{"spec", resolve(base, spec.text("spec", "")).string()}};
    spec.finish();
  } else {
    config.architecture = model;  // checked by models::build_architecture
  }
  config.run = top.object("run");
  config.task = config.run.value("task", std::string("segmentation"));
  config.card = top.object("card");
  if (top.has("init")) {
    config.init =
        parse_section(top.object("init"), top.where() + ": init", train::init_config_from_json);
  }
  if (top.has("transfer")) {
    Section transfer(top.object("transfer"), top.where() + ": transfer");
    config.initial_weights = resolve(base, transfer.text("from", ""));
    config.freeze = transfer.texts("freeze");
    transfer.finish();
  }
  Section data(top.object("data"), top.where() + ": data");
  config.data = parse_data(data, base);
  data.finish();
  config.validation_fraction = top.number("validation_fraction", 0.1, 0.0, 0.9);
  config.loss =
      parse_section(top.object("loss"), top.where() + ": loss", train::loss_config_from_json);
  config.optimizer = parse_section(top.object("optimizer"), top.where() + ": optimizer",
                                   train::optimizer_config_from_json);
  if (top.has("schedule")) {
    // "per" is the loop's business; the rest is engine/train/config.h's. The base rate is the
    // optimiser's and the length follows from the epochs unless given.
    json schedule = top.object("schedule");
    if (schedule.contains("per")) {
      Section per(json{{"per", schedule.at("per")}}, top.where() + ": schedule");
      config.schedule_per_epoch = per.choice("per", "step", {"step", "epoch"}) == "epoch";
      schedule.erase("per");
    }
    if (schedule.contains("base_learning_rate")) {
      throw Error(top.where() + ": schedule: key 'base_learning_rate'",
                  "absent (the optimizer's learning_rate is the base)", "present");
    }
    config.schedule_total_steps_given = schedule.contains("total_steps");
    config.schedule =
        parse_section(schedule, top.where() + ": schedule", train::schedule_config_from_json);
  }
  config.schedule.base_learning_rate = config.optimizer.learning_rate;
  config.clip_grad_norm = top.number("clip_grad_norm", 0.0, 0.0, 1e9);
  if (top.has("augment")) {
    config.augment = parse_section(top.object("augment"), top.where() + ": augment",
                                   train::augment_config_from_json);
    config.augment_enabled = true;
  }
  config.epochs = top.integer("epochs", 1, 1);
  config.batch_size = top.integer("batch_size", 32, 1);
  config.seed = static_cast<std::uint64_t>(top.integer("seed", 1, 0));
  config.threads = static_cast<int>(top.integer("threads", 0, 0));
  config.output = resolve(base, top.text("output", "."));
  top.finish();
  return config;
}

TrainConfig read_train_config(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) {
    throw Error("training config '" + path.string() + "'", "a readable file", "none");
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(file);
  } catch (const nlohmann::json::exception& e) {
    throw Error("training config '" + path.string() + "'", "valid JSON", e.what());
  }
  return parse_train_config(doc, path);
}

}  // namespace cajal::pipeline
