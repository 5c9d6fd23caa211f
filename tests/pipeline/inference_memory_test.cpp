#include "pipeline/inference.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/preprocess/test_support.h"

namespace cajal::pipeline {
namespace {

// A normalised image of 64 x 32 x 32 (D, H, W) blobs that cross the tiny model's thresholds.
core::Volume blob_image() {
  core::Geometry g;
  g.size = {32, 32, 64};
  core::Volume v = core::make_volume(g, core::PixelType::float32);
  std::size_t n = 0;
  for (int d = 0; d < 64; ++d) {
    for (int h = 0; h < 32; ++h) {
      for (int w = 0; w < 32; ++w, ++n) {
        v.pixels[n] = static_cast<float>(1.6 * std::sin(d * 0.45 + 0.3) * std::cos(h * 0.37) +
                                         0.9 * std::sin(w * 0.29 + h * 0.11 - d * 0.2));
      }
    }
  }
  return v;
}

InferenceResult run(models::Model& model, const core::Volume& image, InferenceOptions options) {
  const engine::Context ctx(1);
  return infer_labels(model, ctx, image, options);
}

std::int64_t planned(const InferenceResult& result, const char* key) {
  return result.report.details.at(key).get<std::int64_t>();
}

TEST(InferenceMemory, LimitCountsTheCallersBytesAndTheImageAndLabels) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto image = blob_image();
  const auto alone = run(model, image, {});
  ASSERT_EQ(alone.report.mode, "whole");
  const std::int64_t voxels = 64 * 32 * 32;
  EXPECT_EQ(planned(alone, "held_bytes"), voxels * 4 + voxels);  // float image, byte labels
  const std::int64_t whole = planned(alone, "whole_bytes_planned");
  EXPECT_EQ(alone.report.peak_bytes_planned, whole);

  const std::int64_t held = 3 << 20;
  const auto fits = run(model, image, {.memory_limit_bytes = whole + held, .held_bytes = held});
  EXPECT_EQ(fits.report.mode, "whole");
  EXPECT_EQ(planned(fits, "whole_bytes_planned"), whole + held);
  const auto over = run(model, image, {.memory_limit_bytes = whole + held - 1, .held_bytes = held});
  EXPECT_EQ(over.report.mode, "slab");
  EXPECT_LE(over.report.peak_bytes_planned, whole + held - 1);
  EXPECT_EQ(over.labels.pixels, alone.labels.pixels);
}

TEST(InferenceMemory, SlabPlanStaysWithinEveryLimitItAccepts) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto image = blob_image();
  const auto alone = run(model, image, {});
  const std::int64_t whole = planned(alone, "whole_bytes_planned");
  std::int64_t slabs = 0;
  for (std::int64_t limit = whole - 1; limit > whole / 3; limit -= whole / 16) {
    const auto result = run(model, image, {.memory_limit_bytes = limit});
    ASSERT_NE(result.report.mode, "whole") << limit;
    if (result.report.mode == "slab") {
      ++slabs;
      EXPECT_LE(result.report.peak_bytes_planned, limit);
      EXPECT_EQ(result.labels.pixels, alone.labels.pixels) << limit;
    }
  }
  EXPECT_GE(slabs, 3);
}

}  // namespace
}  // namespace cajal::pipeline
