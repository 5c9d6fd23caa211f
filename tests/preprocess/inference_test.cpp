#include "pipeline/inference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/inference_detail.h"
#include "test_support.h"

namespace cajal::pipeline {
namespace {

// A normalised image (D, H, W) of f(d, h, w); geometry 1 mm, identity.
core::Volume image_of(std::int64_t depth, std::int64_t height, std::int64_t width,
                      float (*f)(double, double, double)) {
  core::Geometry g;
  g.size = {width, height, depth};
  core::Volume v = core::make_volume(g, core::PixelType::float32);
  std::size_t n = 0;
  for (std::int64_t d = 0; d < depth; ++d) {
    for (std::int64_t h = 0; h < height; ++h) {
      for (std::int64_t w = 0; w < width; ++w, ++n) {
        v.pixels[n] = f(static_cast<double>(d), static_cast<double>(h), static_cast<double>(w));
      }
    }
  }
  return v;
}

// Blobs of bright and dark tissue: crosses both of the tiny model's thresholds many times.
float blobs(double d, double h, double w) {
  return static_cast<float>(1.6 * std::sin(d * 0.45 + 0.3) * std::cos(h * 0.37) +
                            0.9 * std::sin(w * 0.29 + h * 0.11 - d * 0.2));
}

std::int64_t count(const core::Volume& labels, float value) {
  return std::count(labels.pixels.begin(), labels.pixels.end(), value);
}

InferenceResult run(models::Model& model, const core::Volume& image, InferenceOptions options) {
  const engine::Context ctx(1);
  return infer_labels(model, ctx, image, options);
}

// A row's labels class by class give each voxel's argmax: the first largest on ties (scores of
// four levels, so ties are many), NaN never taken over a number; 2, 3 and 12 classes, stretches of
// 1 to 700 voxels (across the kernel's 256).
TEST(Inference, RowArgmaxGivesEachVoxelsArgmax) {
  for (const std::int64_t classes : {2, 3, 12}) {
    for (const std::int64_t count : {1, 255, 256, 257, 700}) {
      const std::int64_t stride = count + 5;
      std::vector<float> scores(static_cast<std::size_t>(classes * stride));
      for (std::size_t i = 0; i < scores.size(); ++i) {
        scores[i] = static_cast<float>((i * 2654435761u >> 7) % 4);
      }
      scores[static_cast<std::size_t>(count / 2)] = NAN;           // class 0
      scores[static_cast<std::size_t>(stride + count / 3)] = NAN;  // class 1
      std::vector<std::uint8_t> labels(static_cast<std::size_t>(count), 255);
      detail::argmax_row(scores.data(), classes, stride, count, labels.data());
      for (std::int64_t w = 0; w < count; ++w) {
        ASSERT_EQ(labels[static_cast<std::size_t>(w)],
                  detail::argmax(scores.data() + w, classes, stride))
            << classes << " classes, voxel " << w << " of " << count;
      }
    }
  }
}

TEST(Inference, SlabLabelsEqualWholeVolumeLabels) {
  // Receptive radius 5 at stride 2 (tiny): halo 6; radius 15 at stride 4 (context): halo 16.
  for (const auto& [dir, halo] :
       {std::pair{testing::tiny_model_dir(), 6}, std::pair{testing::context_model_dir(), 16}}) {
    SCOPED_TRACE(dir.filename().string());
    auto model = models::Model::load(dir);
    for (const auto& [depth, height, width] : {std::tuple{40, 20, 20}, std::tuple{37, 19, 21}}) {
      const auto image = image_of(depth, height, width, blobs);
      const auto whole = run(model, image, {.mode = "whole"});
      const auto slab = run(model, image, {.mode = "slab", .slab_core_depth = 4});
      EXPECT_EQ(whole.report.mode, "whole");
      EXPECT_EQ(slab.report.mode, "slab");
      EXPECT_EQ(slab.report.details.at("slab_halo"), halo);
      EXPECT_EQ(slab.report.windows, (depth + 3) / 4);
      EXPECT_GT(count(whole.labels, 1), 1000);
      EXPECT_GT(count(whole.labels, 2), 1000);
      EXPECT_EQ(whole.labels.geometry.size, image.geometry.size);
      EXPECT_EQ(slab.labels.pixels, whole.labels.pixels) << depth << "x" << height << "x" << width;
    }
  }
}

TEST(Inference, WindowModeLabelsAVolumeSmallerThanThePatch) {
  auto model = models::Model::load(testing::tiny_model_dir());  // patch 8 x 24 x 24
  const auto image = image_of(5, 10, 11, [](double d, double h, double w) {
    if (d >= 1 && d <= 3 && h >= 3 && h <= 6 && w >= 3 && w <= 6) {
      return 2.0f;  // bright: bone
    }
    return h >= 8 ? -2.0f : 0.0f;  // dark rows: air; else soft tissue
  });
  const auto result = run(model, image, {.mode = "window"});
  EXPECT_EQ(result.report.mode, "window");
  EXPECT_EQ(result.report.windows, 1);
  ASSERT_EQ(result.labels.geometry.size, image.geometry.size);
  EXPECT_EQ(result.labels.at(4, 4, 2), 1.0f);
  EXPECT_EQ(result.labels.at(5, 9, 0), 2.0f);
  EXPECT_EQ(result.labels.at(0, 0, 0), 0.0f);
  EXPECT_EQ(count(result.labels, 1), 3 * 4 * 4);
  EXPECT_EQ(count(result.labels, 2), 5 * 2 * 11);
}

TEST(Inference, WindowModeAgreesWithWholeVolumeAwayFromTies) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto image = image_of(20, 40, 30, blobs);
  const auto whole = run(model, image, {.mode = "whole"});
  const auto window = run(model, image, {.mode = "window"});
  EXPECT_EQ(window.report.details.at("window_grid"), nlohmann::json({4, 3, 2}));
  std::int64_t same = 0;
  for (std::size_t v = 0; v < whole.labels.pixels.size(); ++v) {
    same += whole.labels.pixels[v] == window.labels.pixels[v];
  }
  EXPECT_GT(static_cast<double>(same) / static_cast<double>(whole.labels.pixels.size()), 0.99);
}

TEST(Inference, AutoChoosesWholeSlabOrWindowByTheMemoryLimit) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto image = image_of(64, 32, 32, blobs);
  const auto whole = run(model, image, {});
  EXPECT_EQ(whole.report.mode, "whole");
  const std::int64_t whole_bytes = whole.report.details.at("whole_bytes_planned");
  EXPECT_LE(whole.report.peak_bytes_planned, 2LL << 30);
  const auto slab = run(model, image, {.memory_limit_bytes = whole_bytes - 1});
  EXPECT_EQ(slab.report.mode, "slab");
  EXPECT_LE(slab.report.peak_bytes_planned, whole_bytes - 1);
  EXPECT_LT(slab.report.details.at("slab_core_depth").get<std::int64_t>(), 64);
  EXPECT_EQ(slab.labels.pixels, whole.labels.pixels);
  const auto window = run(model, image, {.memory_limit_bytes = 1 << 20});
  EXPECT_EQ(window.report.mode, "window");
  EXPECT_EQ(window.report.details.at("batch"), 1);
}

TEST(Inference, NetworkWithInstanceNormRunsInWindowsOnly) {
  auto model = models::Model::load(std::filesystem::path(CAJAL_ENGINE_FIXTURES) / "plain_unet3d");
  const auto image = image_of(20, 18, 16, blobs);
  const auto result = run(model, image, {});
  EXPECT_EQ(result.report.mode, "window");
  EXPECT_EQ(result.labels.geometry.size, image.geometry.size);
  EXPECT_THROW(run(model, image, {.mode = "slab"}), Error);
  EXPECT_THROW(run(model, image, {.mode = "whole"}), Error);
}

// symmetric(labels): voxels whose label differs from their mirror image along some axis.
std::int64_t asymmetric_voxels(const core::Volume& labels) {
  const auto& g = labels.geometry.size;
  std::int64_t asymmetric = 0;
  for (std::int64_t k = 0; k < g[2]; ++k) {
    for (std::int64_t j = 0; j < g[1]; ++j) {
      for (std::int64_t i = 0; i < g[0]; ++i) {
        const float v = labels.at(i, j, k);
        asymmetric += v != labels.at(g[0] - 1 - i, j, k) || v != labels.at(i, g[1] - 1 - j, k) ||
                      v != labels.at(i, j, g[2] - 1 - k);
      }
    }
  }
  return asymmetric;
}

// With all 8 mirrorings averaged, a mirror-symmetric image gets mirror-symmetric labels; the
// random-weight model alone does not give them.
TEST(Inference, TtaGivesMirrorSymmetricLabelsForAMirrorSymmetricImage) {
  auto model = models::Model::load(testing::context_model_dir());
  // Symmetric about the centre of 16 x 24 x 24 along every axis.
  const auto image = image_of(16, 24, 24, [](double d, double h, double w) {
    const double r = std::hypot(d - 7.5, h - 11.5, w - 11.5);
    return static_cast<float>(1.8 * std::cos(r * 0.9) - 0.2);
  });
  for (const std::string mode : {"window", "whole"}) {
    SCOPED_TRACE(mode);
    const auto plain = run(model, image, {.mode = mode});
    const auto tta = run(model, image, {.tta = true, .mode = mode});
    EXPECT_EQ(tta.report.windows, 8 * plain.report.windows);
    EXPECT_GT(asymmetric_voxels(plain.labels), 100);
    EXPECT_EQ(asymmetric_voxels(tta.labels), 0);
    EXPECT_GT(count(tta.labels, 1), 100);
    EXPECT_GT(count(tta.labels, 2), 100);
  }
}

// The context fixture with its run configuration's mirror_axes replaced, in a folder of its own.
models::Model context_model_mirroring(const std::vector<std::string>& axes) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("mirror_" + std::to_string(axes.size()));
  fs::create_directories(dir);
  for (const char* file : {"weights.safetensors", "card.json"}) {
    fs::copy_file(testing::context_model_dir() / file, dir / file,
                  fs::copy_options::overwrite_existing);
  }
  nlohmann::json spec = models::read_json_file(testing::context_model_dir() / "model.json");
  spec["run"]["mirror_axes"] = axes;
  std::ofstream(dir / "model.json") << spec.dump();
  return models::Model::load(dir);
}

TEST(Inference, TtaMirrorsOnlyTheAxesTheModelAllowsAndIsRefusedWithoutAny) {
  const auto image = image_of(16, 24, 24, blobs);
  auto all = context_model_mirroring({"x", "y", "z"});
  const auto plain = run(all, image, {.mode = "whole"});
  EXPECT_EQ(run(all, image, {.tta = true, .mode = "whole"}).report.windows,
            8 * plain.report.windows);
  auto lateral = context_model_mirroring({"x"});
  EXPECT_EQ(run(lateral, image, {.tta = true, .mode = "whole"}).report.windows,
            2 * plain.report.windows);
  auto two = context_model_mirroring({"z", "y"});
  EXPECT_EQ(run(two, image, {.tta = true, .mode = "whole"}).report.windows,
            4 * plain.report.windows);
  auto none = context_model_mirroring({});
  EXPECT_THROW(run(none, image, {.tta = true, .mode = "whole"}), Error);
  EXPECT_EQ(run(none, image, {.mode = "whole"}).labels.pixels, plain.labels.pixels);
}

TEST(Inference, RejectsAnUnknownModeAndAnOverlapOutsideZeroToOne) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto image = image_of(8, 8, 8, blobs);
  EXPECT_THROW(run(model, image, {.mode = "slabs"}), Error);
  EXPECT_THROW(run(model, image, {.overlap = 1.0}), Error);
  EXPECT_THROW(run(model, image, {.overlap = -0.1}), Error);
}

TEST(Inference, WindowStartsSpreadEvenlyAsNnUNet) {
  EXPECT_EQ(window_starts(100, 40, 0.5), (std::vector<std::int64_t>{0, 20, 40, 60}));
  EXPECT_EQ(window_starts(40, 40, 0.5), (std::vector<std::int64_t>{0}));
  // ceil(7 / 4) + 1 = 3 steps over 0..7.
  EXPECT_EQ(window_starts(15, 8, 0.5), (std::vector<std::int64_t>{0, 4, 7}));
  EXPECT_EQ(window_starts(24, 8, 0.0), (std::vector<std::int64_t>{0, 8, 16}));
}

}  // namespace
}  // namespace cajal::pipeline
