#include "pipeline/train_config.h"

#include <fstream>
#include <utility>

#include "core/error.h"
#include "engine/params.h"
#include "engine/train/config.h"

namespace cajal::pipeline {
namespace {

using nlohmann::json;
namespace train = engine::train;

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& text) {
  const std::filesystem::path path(text);
  return path.is_absolute() ? path : (base / path).lexically_normal();
}

using Section = engine::ParamReader;

// A number in [min, max], or `fallback` when absent.
double number_in(Section& s, const std::string& key, double fallback, double min, double max) {
  const double value = s.number(key, fallback);
  if (!(value >= min && value <= max)) {
    s.fail(key, "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
           std::to_string(value));
  }
  return value;
}

// A required path, resolved against the config's folder.
std::filesystem::path path_in(Section& s, const std::string& key,
                              const std::filesystem::path& base) {
  if (!s.has(key)) {
    s.fail(key, "a path", "nothing (the key is required)");
  }
  return resolve(base, s.text(key, ""));
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
  c.kind = s.choice("type", "idx", {"idx", "shapes2d", "volumes", "phantom", "lesions"});
  if (c.kind == "idx") {
    c.train_images = path_in(s, "train_images", base);
    c.train_labels = path_in(s, "train_labels", base);
    if (s.has("test_images") != s.has("test_labels")) {
      s.fail("test_images", "test_images and test_labels together", "only one of them");
    }
    if (s.has("test_images")) {
      c.test_images = path_in(s, "test_images", base);
      c.test_labels = path_in(s, "test_labels", base);
    }
    c.pad = s.integer("pad", 0, 0);
    c.scale = number_in(s, "scale", c.scale, -1e6, 1e6);
    c.mean = number_in(s, "mean", c.mean, -1e6, 1e6);
    c.std = number_in(s, "std", c.std, 1e-12, 1e6);
    c.limit = s.integer("limit", 0, 0);
  } else if (c.kind == "volumes" || c.kind == "phantom") {
    if (c.kind == "volumes") {
      c.cases = path_in(s, "cases", base);
      if (s.has("test_cases")) {
        c.test_cases = path_in(s, "test_cases", base);
      }
      c.image_name = s.text("image", c.image_name);
      c.label_name = s.text("label", c.label_name);
    } else {
      c.count = s.integer("count", 20, 1);
      c.test_count = s.integer("test_count", 0, 0);
      c.min_in_plane_spacing = number_in(s, "min_in_plane_spacing", 1.0, 0.1, 10.0);
      c.max_in_plane_spacing =
          number_in(s, "max_in_plane_spacing", 2.0, c.min_in_plane_spacing, 10.0);
      c.min_slice_thickness = number_in(s, "min_slice_thickness", 1.0, 0.1, 20.0);
      c.max_slice_thickness = number_in(s, "max_slice_thickness", 5.0, c.min_slice_thickness, 20.0);
    }
    c.patches_per_case = s.integer("patches_per_case", c.patches_per_case, 1);
    c.test_patches_per_case = s.integer("test_patches_per_case", c.test_patches_per_case, 1);
    c.foreground_fraction = number_in(s, "foreground_fraction", c.foreground_fraction, 0.0, 1.0);
    if (s.has("foreground_label_weights")) {
      for (const auto& [name, value] : s.object("foreground_label_weights").items()) {
        if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= 1000)) {
          s.fail("foreground_label_weights", "a weight from 0 to 1000 for each label name",
                 "'" + name + "': " + value.dump());
        }
        c.foreground_label_weights.emplace_back(name, value.get<double>());
      }
    }
    c.data_seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0));
  } else if (c.kind == "lesions") {
    c.count = s.integer("count", 20, 1);
    c.test_count = s.integer("test_count", 0, 0);
    c.lesion_grid = s.spatial("size", 3, 96, 16);
    c.lesion_in_plane_spacing = number_in(s, "in_plane_spacing", 2.0, 0.1, 10.0);
    c.lesion_slice_thickness = number_in(s, "slice_thickness", 3.0, 0.1, 20.0);
    c.lesion_margin_mm = number_in(s, "margin_mm", 5.0, 0.0, 100.0);
    c.data_seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0));
  } else {
    c.count = s.integer("count", 1000, 1);
    c.test_count = s.integer("test_count", 100, 0);
    c.size = s.integer("size", c.size, 16);
    c.classes = s.integer("classes", c.classes, 2);
    c.noise = number_in(s, "noise", c.noise, 0.0, 10.0);
    c.overlap = s.boolean("overlap", c.overlap);
    c.data_seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0));
  }
  return c;
}

}  // namespace

TrainConfig parse_train_config(const nlohmann::json& doc, const std::filesystem::path& source) {
  TrainConfig config;
  config.source = source;
  const std::filesystem::path base = source.parent_path();
  const std::string where = "'" + source.string() + "'";
  Section top(doc, where);
  const json& model = top.object("model");
  if (model.contains("spec")) {
    Section spec(model, where + ": model");
    config.architecture = {{"spec", path_in(spec, "spec", base).string()}};
    spec.finish();
  } else {
    config.architecture = model;  // checked by models::build_architecture
  }
  config.run = top.object("run");
  config.task = config.run.value("task", std::string("segmentation"));
  config.card = top.object("card");
  if (top.has("init")) {
    config.init = parse_section(top.object("init"), where + ": init", train::init_config_from_json);
  }
  if (top.has("transfer")) {
    Section transfer(top.object("transfer"), where + ": transfer");
    config.initial_weights = path_in(transfer, "from", base);
    config.freeze = transfer.texts("freeze");
    transfer.finish();
  }
  Section data(top.object("data"), where + ": data");
  config.data = parse_data(data, base);
  data.finish();
  config.validation_fraction = number_in(top, "validation_fraction", 0.1, 0.0, 0.9);
  config.loss = parse_section(top.object("loss"), where + ": loss", train::loss_config_from_json);
  config.optimizer = parse_section(top.object("optimizer"), where + ": optimizer",
                                   train::optimizer_config_from_json);
  if (top.has("schedule")) {
    // "per" is the loop's business; the rest is engine/train/config.h's. The base rate is the
    // optimiser's and the length follows from the epochs unless given.
    json schedule = top.object("schedule");
    if (schedule.contains("per")) {
      const json per_only = {{"per", schedule.at("per")}};
      Section per(per_only, where + ": schedule");
      config.schedule_per_epoch = per.choice("per", "step", {"step", "epoch"}) == "epoch";
      schedule.erase("per");
    }
    if (schedule.contains("base_learning_rate")) {
      throw Error(where + ": schedule: key 'base_learning_rate'",
                  "absent (the optimizer's learning_rate is the base)", "present");
    }
    config.schedule_total_steps_given = schedule.contains("total_steps");
    config.schedule =
        parse_section(schedule, where + ": schedule", train::schedule_config_from_json);
  }
  config.schedule.base_learning_rate = config.optimizer.learning_rate;
  config.clip_grad_norm = number_in(top, "clip_grad_norm", 0.0, 0.0, 1e9);
  if (top.has("augment")) {
    config.augment =
        parse_section(top.object("augment"), where + ": augment", train::augment_config_from_json);
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
