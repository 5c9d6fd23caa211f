#include "pipeline/train_data.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/train/random.h"
#include "io/idx.h"

namespace cajal::pipeline {
namespace {

using engine::Dims;
using engine::Tensor;

class IdxSamples : public SampleSet {
 public:
  IdxSamples(const TrainDataConfig& config, const std::filesystem::path& images_path,
             const std::filesystem::path& labels_path, std::int64_t limit)
      : config_(config) {
    images_ = io::read_idx(images_path);
    labels_ = io::read_idx(labels_path);
    if (images_.dims.size() != 3) {
      throw Error("IDX images '" + images_path.string() + "'", "3 dims [count, rows, columns]",
                  std::to_string(images_.dims.size()) + " dims");
    }
    if (labels_.dims.size() != 1 || labels_.dims[0] != images_.dims[0]) {
      throw Error("IDX labels '" + labels_path.string() + "'",
                  "one label per image: [" + std::to_string(images_.dims[0]) + "]",
                  "dims of rank " + std::to_string(labels_.dims.size()) + ", first " +
                      std::to_string(labels_.dims.empty() ? 0 : labels_.dims[0]));
    }
    count_ = limit > 0 ? std::min(limit, images_.dims[0]) : images_.dims[0];
    for (const auto label : labels_.values) {
      classes_ = std::max<std::int64_t>(classes_, label + 1);
    }
  }
  std::int64_t size() const override { return count_; }
  Dims image_dims() const override {
    return {1, images_.dims[1] + 2 * config_.pad, images_.dims[2] + 2 * config_.pad};
  }
  Dims target_dims() const override { return {1}; }
  std::int64_t classes() const override { return classes_; }
  Sample get(std::int64_t index) const override {
    const std::int64_t rows = images_.dims[1];
    const std::int64_t cols = images_.dims[2];
    const std::int64_t pad = config_.pad;
    const float background = static_cast<float>((0.0 - config_.mean) / config_.std);
    Sample sample{Tensor(image_dims(), background), Tensor({1})};
    const std::uint8_t* src = images_.values.data() + index * rows * cols;
    float* dst = sample.image.data();
    const std::int64_t width = cols + 2 * pad;
    for (std::int64_t y = 0; y < rows; ++y) {
      for (std::int64_t x = 0; x < cols; ++x) {
        dst[(y + pad) * width + x + pad] =
            static_cast<float>((src[y * cols + x] * config_.scale - config_.mean) / config_.std);
      }
    }
    sample.target.data()[0] = static_cast<float>(labels_.values[static_cast<std::size_t>(index)]);
    return sample;
  }

 private:
  TrainDataConfig config_;
  io::IdxArray images_;
  io::IdxArray labels_;
  std::int64_t count_ = 0;
  std::int64_t classes_ = 0;
};

class ShapeSamples : public SampleSet {
 public:
  ShapeSamples(const TrainDataConfig& config, std::int64_t count, std::uint64_t stream)
      : config_(config), count_(count), stream_(stream) {
    if (config.classes > 5) {
      throw Error("shapes2d data: classes", "2 to 5 (background and up to 4 shapes)",
                  std::to_string(config.classes));
    }
  }
  std::int64_t size() const override { return count_; }
  Dims image_dims() const override { return {1, config_.size, config_.size}; }
  Dims target_dims() const override { return {config_.size, config_.size}; }
  std::int64_t classes() const override { return config_.classes; }
  Sample get(std::int64_t index) const override {
    const std::uint64_t seed = engine::train::mix_seed(
        engine::train::mix_seed(config_.data_seed, stream_), static_cast<std::uint64_t>(index));
    return make_shapes_sample(config_, seed);
  }

 private:
  TrainDataConfig config_;
  std::int64_t count_;
  std::uint64_t stream_;
};

// Whether pixel centre (x, y) lies inside shape `kind` centred at (cx, cy) with radius r.
bool inside(std::int64_t kind, double x, double y, double cx, double cy, double r, double angle) {
  const double dx = x - cx;
  const double dy = y - cy;
  const double u = std::cos(angle) * dx + std::sin(angle) * dy;
  const double v = -std::sin(angle) * dx + std::cos(angle) * dy;
  switch (kind) {
    case 1:  // disc
      return dx * dx + dy * dy <= r * r;
    case 2:  // square, rotated
      return std::abs(u) <= r * 0.85 && std::abs(v) <= r * 0.85;
    case 3: {  // equilateral triangle, rotated: inside all three edges
      for (int e = 0; e < 3; ++e) {
        const double a = 2.0 * M_PI * e / 3.0;
        if (std::cos(a) * u + std::sin(a) * v > r * 0.5) {
          return false;
        }
      }
      return true;
    }
    default:  // ring
      return dx * dx + dy * dy <= r * r && dx * dx + dy * dy >= 0.3 * r * r;
  }
}

// Separable Gaussian blur, sigma 1 pixel, radius 3, edges clamped.
void blur(std::vector<float>& image, std::int64_t size) {
  const std::vector<float> kernel = {0.00443f, 0.05399f, 0.24197f, 0.39894f,
                                     0.24197f, 0.05399f, 0.00443f};
  std::vector<float> tmp(image.size());
  for (int pass = 0; pass < 2; ++pass) {
    for (std::int64_t y = 0; y < size; ++y) {
      for (std::int64_t x = 0; x < size; ++x) {
        float sum = 0.0f;
        for (std::int64_t k = -3; k <= 3; ++k) {
          const std::int64_t p = std::clamp((pass == 0 ? x : y) + k, std::int64_t{0}, size - 1);
          sum += kernel[static_cast<std::size_t>(k + 3)] *
                 image[static_cast<std::size_t>(pass == 0 ? y * size + p : p * size + x)];
        }
        tmp[static_cast<std::size_t>(y * size + x)] = sum;
      }
    }
    image.swap(tmp);
  }
}

}  // namespace

Sample make_shapes_sample(const TrainDataConfig& config, std::uint64_t seed) {
  engine::train::Generator random(seed);
  const std::int64_t n = config.size;
  std::vector<float> image(static_cast<std::size_t>(n * n), 0.0f);
  Tensor label({n, n});
  const std::int64_t shapes = 2 + static_cast<std::int64_t>(random.below(3));
  std::vector<std::array<double, 3>> placed;  // centre x, y and reach of the shapes drawn
  for (std::int64_t s = 0; s < shapes; ++s) {
    const auto kind =
        1 + static_cast<std::int64_t>(random.below(static_cast<std::uint64_t>(config.classes - 1)));
    const double r = random.uniform(0.1, 0.25) * static_cast<double>(n);
    double cx = random.uniform(r, static_cast<double>(n) - r);
    double cy = random.uniform(r, static_cast<double>(n) - r);
    // Apart: the circles around the shapes stay two pixels apart (the blur's reach); a square's
    // corners reach 0.85 x sqrt(2) r from its centre, the other shapes r.
    const double reach = kind == 2 ? r * 0.85 * std::sqrt(2.0) : r;
    const auto clear = [&] {
      return std::all_of(placed.begin(), placed.end(), [&](const std::array<double, 3>& o) {
        return std::hypot(cx - o[0], cy - o[1]) > reach + o[2] + 2.0;
      });
    };
    for (int tries = 1; !config.overlap && !clear() && tries < 100; ++tries) {
      cx = random.uniform(r, static_cast<double>(n) - r);
      cy = random.uniform(r, static_cast<double>(n) - r);
    }
    const double angle = random.uniform(0.0, M_PI);
    const auto brightness = static_cast<float>(random.uniform(0.5, 1.0));
    if (!config.overlap && !clear()) {
      continue;
    }
    placed.push_back({cx, cy, reach});
    for (std::int64_t y = 0; y < n; ++y) {
      for (std::int64_t x = 0; x < n; ++x) {
        if (inside(kind, static_cast<double>(x), static_cast<double>(y), cx, cy, r, angle)) {
          image[static_cast<std::size_t>(y * n + x)] = brightness;
          label.data()[y * n + x] = static_cast<float>(kind);
        }
      }
    }
  }
  blur(image, n);
  for (auto& v : image) {
    v += static_cast<float>(random.normal(0.0, config.noise));
  }
  return {Tensor({1, n, n}, std::move(image)), std::move(label)};
}

std::unique_ptr<SampleSet> open_samples(const TrainDataConfig& config, const models::RunConfig& run,
                                        bool test) {
  if (config.kind == "volumes" || config.kind == "phantom") {
    return open_volume_samples(config, run, test);
  }
  if (config.kind == "lesions") {
    return open_lesion_samples(config, run, test);
  }
  if (config.kind == "idx") {
    if (test) {
      if (config.test_images.empty()) {
        return nullptr;
      }
      return std::make_unique<IdxSamples>(config, config.test_images, config.test_labels, 0);
    }
    return std::make_unique<IdxSamples>(config, config.train_images, config.train_labels,
                                        config.limit);
  }
  if (test) {
    if (config.test_count == 0) {
      return nullptr;
    }
    return std::make_unique<ShapeSamples>(config, config.test_count, 2);
  }
  return std::make_unique<ShapeSamples>(config, config.count, 1);
}

}  // namespace cajal::pipeline
