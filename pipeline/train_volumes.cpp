// `cajal train` data of kinds "volumes" (image and label files) and "phantom" (cases generated as
// `cajal phantom` makes them): each case is preprocessed once, as the trained model's run
// configuration says, and kept in memory; samples are patches of run.patch_size cut from it,
// a share of them centred on a voxel of a label present in the case (nnU-Net's foreground
// oversampling, one label drawn uniformly so small organs are seen as often as large ones).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "engine/train/random.h"
#include "io/volume_io.h"
#include "pipeline/csv.h"
#include "pipeline/phantom.h"
#include "pipeline/preprocess.h"
#include "pipeline/train_data.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;
using engine::Tensor;
using engine::train::Generator;
using engine::train::mix_seed;

// A preprocessed case: the normalised image and its labels on the model's grid, and for each
// label present a spread of its voxels (patch centres for foreground oversampling).
struct Case {
  std::string name;
  core::Index3 size{};
  std::vector<float> image;
  std::vector<std::uint8_t> labels;
  std::vector<std::vector<std::int64_t>> centres;  // per present label
  std::vector<std::uint8_t> centre_labels;         // the label of each list of centres
};

constexpr std::size_t kCentresPerLabel = 4096;

Case make_case(const std::string& name, const core::Volume& image, const core::Volume& labels,
               const models::RunConfig& run) {
  const std::int64_t classes = static_cast<std::int64_t>(run.labels.size());
  const auto pre = preprocess(image, run);
  const core::Volume target = preprocess_labels(labels, pre.record);
  Case c;
  c.name = name;
  c.size = pre.image.geometry.size;
  c.image = pre.image.pixels;
  c.labels.resize(target.pixels.size());
  std::vector<std::vector<std::int64_t>> voxels(static_cast<std::size_t>(classes));
  for (std::size_t v = 0; v < target.pixels.size(); ++v) {
    const float value = target.pixels[v];
    if (!(value >= 0.0f && value < static_cast<float>(classes)) || value != std::floor(value)) {
      throw Error("labels of case '" + name + "'",
                  "whole values 0 to " + std::to_string(classes - 1) +
                      " (one per label of the run configuration)",
                  std::to_string(value));
    }
    c.labels[v] = static_cast<std::uint8_t>(value);
    if (value > 0.0f) {
      voxels[static_cast<std::size_t>(value)].push_back(static_cast<std::int64_t>(v));
    }
  }
  for (std::size_t label = 0; label < voxels.size(); ++label) {
    const std::vector<std::int64_t>& list = voxels[label];
    if (list.empty()) {
      continue;
    }
    // Evenly spread over the label's voxels, in raster order: deterministic and cheap.
    std::vector<std::int64_t> kept;
    const std::size_t step = std::max<std::size_t>(1, list.size() / kCentresPerLabel);
    for (std::size_t i = 0; i < list.size(); i += step) {
      kept.push_back(list[i]);
    }
    c.centres.push_back(std::move(kept));
    c.centre_labels.push_back(static_cast<std::uint8_t>(label));
  }
  return c;
}

// Case folders (sorted by name) holding both files, or the rows of a CSV "image,label" (paths
// relative to the CSV's folder; a header row naming image and label is skipped).
std::vector<std::pair<fs::path, fs::path>> list_cases(const fs::path& where,
                                                      const TrainDataConfig& config) {
  std::vector<std::pair<fs::path, fs::path>> cases;
  if (fs::is_directory(where)) {
    std::vector<fs::path> folders;
    for (const auto& entry : fs::directory_iterator(where)) {
      if (entry.is_directory() && fs::exists(entry.path() / config.image_name) &&
          fs::exists(entry.path() / config.label_name)) {
        folders.push_back(entry.path());
      }
    }
    std::sort(folders.begin(), folders.end());
    for (const auto& folder : folders) {
      cases.emplace_back(folder / config.image_name, folder / config.label_name);
    }
    if (cases.empty()) {
      throw Error("training cases in '" + where.string() + "'",
                  "case folders holding " + config.image_name + " and " + config.label_name,
                  "none");
    }
    return cases;
  }
  std::ifstream file(where, std::ios::binary);
  if (!file) {
    throw Error("training cases '" + where.string() + "'",
                "a folder of case folders or a readable CSV of image,label", "neither");
  }
  std::stringstream text;
  text << file.rdbuf();
  const CsvTable table = parse_csv(text.str(), where.string());
  const fs::path base = where.parent_path();
  auto resolve = [&](const std::string& cell) {
    const fs::path p(cell);
    return p.is_absolute() ? p : (base / p).lexically_normal();
  };
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& row = table.rows[r];
    if (r == 0 && !row.empty() && row[0].rfind("image", 0) == 0) {
      continue;
    }
    if (row.size() != 2) {
      throw Error(csv_location(where.string(), table.lines[r]), "image,label",
                  std::to_string(row.size()) + " cells");
    }
    cases.emplace_back(resolve(row[0]), resolve(row[1]));
  }
  if (cases.empty()) {
    throw Error("training cases '" + where.string() + "'", "at least one image,label row", "none");
  }
  return cases;
}

// Phantom case `index` of the data's own stream: spacing drawn from the configured ranges and a
// field of view of 300-480 mm in-plane and 300-600 mm along z (so the torso is sometimes
// scaled down to fit, as in `cajal phantom`'s small grids), stored orientation varied.
PhantomCase make_phantom(const TrainDataConfig& config, std::uint64_t stream, int index) {
  Generator random(mix_seed(mix_seed(config.data_seed, stream), static_cast<std::uint64_t>(index)));
  PhantomOptions options;
  options.seed = mix_seed(config.data_seed, stream);
  options.in_plane_spacing =
      std::round(random.uniform(config.min_in_plane_spacing, config.max_in_plane_spacing) * 1e3) /
      1e3;
  options.slice_thickness =
      std::round(random.uniform(config.min_slice_thickness, config.max_slice_thickness) * 1e2) /
      1e2;
  const double fov_xy = random.uniform(300.0, 480.0);
  const double fov_z = random.uniform(300.0, 600.0);
  const auto xy = static_cast<std::int64_t>(std::round(fov_xy / *options.in_plane_spacing));
  options.size = {xy, xy, static_cast<std::int64_t>(std::round(fov_z / *options.slice_thickness))};
  options.orientation = "vary";
  return generate_phantom_case(make_phantom_case_spec(options, index), 2);
}

class VolumeSamples final : public SampleSet {
 public:
  VolumeSamples(const TrainDataConfig& config, const models::RunConfig& run, bool test)
      : config_(config), test_(test) {
    if (run.spatial_dims != 3 || run.patch_size.size() != 3) {
      throw Error("run configuration for '" + config.kind + "' training data",
                  "a 3D model with a patch_size of 3 numbers (D, H, W)",
                  std::to_string(run.spatial_dims) + "D, patch_size of " +
                      std::to_string(run.patch_size.size()));
    }
    if (run.labels.size() < 2 || run.labels.size() > 255) {
      throw Error("run configuration's labels", "2 to 255 names (background first)",
                  std::to_string(run.labels.size()));
    }
    classes_ = static_cast<std::int64_t>(run.labels.size());
    if (!config.foreground_label_weights.empty()) {
      label_weights_.assign(run.labels.size(), 1.0);
      for (const auto& [name, weight] : config.foreground_label_weights) {
        const auto found = std::find(run.labels.begin() + 1, run.labels.end(), name);
        if (found == run.labels.end()) {
          std::string names;
          for (std::size_t l = 1; l < run.labels.size(); ++l) {
            names += (l > 1 ? ", " : "") + run.labels[l];
          }
          throw Error("data: foreground_label_weights: label '" + name + "'",
                      "one of the run configuration's labels but the first (" + names + ")",
                      "no such label");
        }
        label_weights_[static_cast<std::size_t>(found - run.labels.begin())] = weight;
      }
    }
    patch_ = {run.patch_size[2], run.patch_size[1], run.patch_size[0]};  // (i, j, k)
    per_case_ = test ? config.test_patches_per_case : config.patches_per_case;
    if (config.kind == "volumes") {
      for (const auto& [image, label] :
           list_cases(test ? config.test_cases : config.cases, config)) {
        const core::Volume img = io::read_volume(image);
        const core::Volume lab = io::read_volume(label);
        cases_.push_back(make_case(image.string(), img, lab, run));
        core::log_info("training case " + image.string() + ": " +
                       std::to_string(cases_.back().size[0]) + "x" +
                       std::to_string(cases_.back().size[1]) + "x" +
                       std::to_string(cases_.back().size[2]) + " after preprocessing");
      }
    } else {
      const int count = static_cast<int>(test ? config.test_count : config.count);
      for (int index = 0; index < count; ++index) {
        const PhantomCase phantom = make_phantom(config, test ? 2 : 1, index);
        cases_.push_back(make_case((test ? "test " : "") + phantom.spec.case_id, phantom.ct,
                                   phantom.labels, run));
        core::log_info("phantom training case " + cases_.back().name + ": " +
                       std::to_string(cases_.back().size[0]) + "x" +
                       std::to_string(cases_.back().size[1]) + "x" +
                       std::to_string(cases_.back().size[2]) + " after preprocessing");
      }
    }
  }

  std::int64_t size() const override {
    return static_cast<std::int64_t>(cases_.size()) * per_case_;
  }
  // Fixed patches (validation, test): a pure function of the index.
  Sample get(std::int64_t index) const override {
    return cut(index, mix_seed(config_.data_seed, test_ ? 7 : 5));
  }
  // Training: a fresh patch of the same case each step.
  Sample draw(std::int64_t index, std::uint64_t seed) const override { return cut(index, seed); }
  engine::Dims image_dims() const override { return {1, patch_[2], patch_[1], patch_[0]}; }
  engine::Dims target_dims() const override { return {patch_[2], patch_[1], patch_[0]}; }
  std::int64_t classes() const override { return classes_; }

 private:
  Sample cut(std::int64_t index, std::uint64_t seed) const {
    CAJAL_CHECK(index >= 0 && index < size()) << "sample index out of range";
    const Case& c =
        cases_[static_cast<std::size_t>(index % static_cast<std::int64_t>(cases_.size()))];
    Generator random(mix_seed(seed, static_cast<std::uint64_t>(index)));
    core::Index3 begin{};
    const std::vector<std::int64_t>* centres = nullptr;
    if (!c.centres.empty() && random.chance(config_.foreground_fraction)) {
      centres = draw_centres(c, random);
    }
    if (centres != nullptr) {
      const auto& list = *centres;
      std::int64_t v = list[random.below(list.size())];
      const core::Index3 centre{v % c.size[0], (v / c.size[0]) % c.size[1],
                                v / (c.size[0] * c.size[1])};
      for (int a = 0; a < 3; ++a) {
        // The centre anywhere in the middle half of the patch, kept inside the image.
        const std::int64_t offset =
            patch_[a] / 4 + static_cast<std::int64_t>(random.below(static_cast<std::uint64_t>(
                                std::max<std::int64_t>(1, patch_[a] / 2))));
        begin[a] = std::clamp<std::int64_t>(centre[a] - offset, 0, c.size[a] - patch_[a]);
      }
    } else {
      for (int a = 0; a < 3; ++a) {
        begin[a] = static_cast<std::int64_t>(
            random.below(static_cast<std::uint64_t>(c.size[a] - patch_[a] + 1)));
      }
    }
    Tensor image({1, patch_[2], patch_[1], patch_[0]});
    Tensor target({patch_[2], patch_[1], patch_[0]});
    float* out_image = image.data();
    float* out_target = target.data();
    for (std::int64_t k = 0; k < patch_[2]; ++k) {
      for (std::int64_t j = 0; j < patch_[1]; ++j) {
        const std::size_t from = static_cast<std::size_t>(
            begin[0] + c.size[0] * ((begin[1] + j) + c.size[1] * (begin[2] + k)));
        const std::size_t to = static_cast<std::size_t>(patch_[0] * (j + patch_[1] * k));
        std::copy_n(c.image.begin() + static_cast<std::ptrdiff_t>(from), patch_[0], out_image + to);
        for (std::int64_t i = 0; i < patch_[0]; ++i) {
          out_target[to + static_cast<std::size_t>(i)] =
              c.labels[from + static_cast<std::size_t>(i)];
        }
      }
    }
    return {std::move(image), std::move(target)};
  }

  // The voxels of the label a foreground patch is centred on: drawn uniformly among the labels
  // present, or by their weights (none when every present label weighs 0).
  const std::vector<std::int64_t>* draw_centres(const Case& c, Generator& random) const {
    if (label_weights_.empty()) {
      return &c.centres[random.below(c.centres.size())];
    }
    double total = 0;
    for (const std::uint8_t label : c.centre_labels) {
      total += label_weights_[label];
    }
    if (!(total > 0)) {
      return nullptr;
    }
    // The label whose stretch of [0, total) holds the point; the last of positive weight when
    // rounding leaves the point past them all.
    double point = random.uniform() * total;
    const std::vector<std::int64_t>* drawn = nullptr;
    for (std::size_t i = 0; i < c.centres.size(); ++i) {
      const double weight = label_weights_[c.centre_labels[i]];
      if (weight > 0) {
        drawn = &c.centres[i];
        if (point < weight) {
          break;
        }
        point -= weight;
      }
    }
    return drawn;
  }

  TrainDataConfig config_;
  bool test_ = false;
  std::int64_t classes_ = 0;
  std::vector<double> label_weights_;  // per label value; empty: labels drawn uniformly
  core::Index3 patch_{};
  std::int64_t per_case_ = 1;
  std::vector<Case> cases_;
};

}  // namespace

std::unique_ptr<SampleSet> open_volume_samples(const TrainDataConfig& config,
                                               const models::RunConfig& run, bool test) {
  if (test && (config.kind == "volumes" ? config.test_cases.empty() : config.test_count == 0)) {
    return nullptr;
  }
  return std::make_unique<VolumeSamples>(config, run, test);
}

}  // namespace cajal::pipeline
