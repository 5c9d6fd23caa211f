// Labels must come back on the input's own grid whatever the stored orientation: a mask flipped or
// shifted by one voxel is a wrong mask.
#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/preprocess.h"
#include "test_support.h"

namespace cajal::pipeline {
namespace {

// The same voxels stored another way: output axis a runs along input axis source[a], reversed
// when flip[a]. Written with plain index loops, independently of pipeline/reorient.cpp.
core::Volume restore_as(const core::Volume& in, std::array<int, 3> source,
                        std::array<bool, 3> flip) {
  const auto& g = in.geometry;
  core::Geometry out;
  core::Vec3 first{};
  for (int a = 0; a < 3; ++a) {
    out.size[a] = g.size[source[a]];
    out.spacing[a] = g.spacing[source[a]];
    for (int r = 0; r < 3; ++r) {
      out.direction[3 * r + a] = (flip[a] ? -1 : 1) * g.direction[3 * r + source[a]];
    }
    first[source[a]] = flip[a] ? static_cast<double>(g.size[source[a]] - 1) : 0.0;
  }
  out.origin = g.index_to_physical(first);
  core::Volume v = core::make_volume(out, in.pixel_type);
  std::size_t n = 0;
  for (std::int64_t k = 0; k < out.size[2]; ++k) {
    for (std::int64_t j = 0; j < out.size[1]; ++j) {
      for (std::int64_t i = 0; i < out.size[0]; ++i, ++n) {
        const core::Index3 o{i, j, k};
        core::Index3 s{};
        for (int a = 0; a < 3; ++a) {
          s[source[a]] = flip[a] ? g.size[source[a]] - 1 - o[a] : o[a];
        }
        v.pixels[n] = in.at(s[0], s[1], s[2]);
      }
    }
  }
  return v;
}

// Every voxel of `labels` equals the reference's label at the same physical point.
void expect_same_labels_in_space(const core::Volume& labels, const core::Volume& reference) {
  const auto& g = labels.geometry;
  std::int64_t different = 0;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        const auto p = g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        different += labels.pixels[n] != testing::value_at_point(reference, p);
      }
    }
  }
  EXPECT_EQ(different, 0) << "of " << g.voxel_count() << " voxels";
}

models::RunConfig coarse_run(const models::Model& model) {
  models::RunConfig run = model.spec().run;
  run.target_spacing = {12.0, 7.0, 7.0};  // (D, H, W): resampling with non-integer ratios
  return run;
}

TEST(Reorientation, PlanPermutesAndFlipsAxesTowardTheTarget) {
  core::Geometry g;
  g.size = {4, 5, 6};
  g.direction = direction_of_orientation("LSA");
  const auto step = plan_reorientation(g, "RAS");
  EXPECT_EQ(step.source_axis, (std::array<int, 3>{0, 2, 1}));
  EXPECT_EQ(step.flip, (std::array<bool, 3>{true, false, false}));
  EXPECT_EQ(step.after.size, (core::Index3{4, 6, 5}));
  EXPECT_EQ(core::orientation_code(step.after.direction), "RAS");
  // Voxel (0, 0, 0) after is input voxel (3, 0, 0): the far end of the flipped axis.
  const auto expected = g.index_to_physical({3, 0, 0});
  for (int c = 0; c < 3; ++c) {
    EXPECT_DOUBLE_EQ(step.after.origin[c], expected[c]);
  }
}

TEST(Orientation, RestoredLabelsMatchTheCanonicalOnesForEveryStoredOrientation) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto run = coarse_run(model);
  const auto canonical =
      testing::segment_volume(model, testing::small_phantom("LPS").ct, run, "whole");
  for (const float label : {0.0f, 1.0f, 2.0f}) {
    EXPECT_GT(std::count(canonical.pixels.begin(), canonical.pixels.end(), label), 100)
        << "label " << label;
  }
  for (const std::string code : {"RAS", "LSA", "RIP", "PIR"}) {
    SCOPED_TRACE(code);
    const auto ct = testing::small_phantom(code).ct;
    ASSERT_EQ(core::orientation_code(ct.geometry.direction), code);
    const auto labels = testing::segment_volume(model, ct, run, "whole");
    EXPECT_TRUE(core::same_grid(labels.geometry, ct.geometry, 0));
    expect_same_labels_in_space(labels, canonical);
  }
}

TEST(Orientation, RestoredLabelsMatchForObliqueDirectionsStoredAnyWay) {
  auto model = models::Model::load(testing::tiny_model_dir());
  const auto run = coarse_run(model);
  auto ct = testing::small_phantom("LPS").ct;
  // 20 degrees about an axis between x and z: every direction cosine off the axes.
  const double a = 20.0 * M_PI / 180.0;
  const double c = std::cos(a);
  const double s = std::sin(a);
  const double x = 1 / std::sqrt(2.0);
  const double z = 1 / std::sqrt(2.0);
  const double t = 1 - c;
  ct.geometry.direction = {t * x * x + c, -s * z,    t * x * z, s * z,        c,
                           -s * x,        t * x * z, s * x,     t * z * z + c};
  const auto canonical = testing::segment_volume(model, ct, run, "whole");
  for (const auto& [source, flip] :
       {std::pair{std::array<int, 3>{1, 0, 2}, std::array<bool, 3>{true, false, false}},
        std::pair{std::array<int, 3>{2, 0, 1}, std::array<bool, 3>{false, true, true}}}) {
    const auto stored = restore_as(ct, source, flip);
    const auto labels = testing::segment_volume(model, stored, run, "whole");
    EXPECT_TRUE(core::same_grid(labels.geometry, stored.geometry, 0));
    expect_same_labels_in_space(labels, canonical);
  }
}

}  // namespace
}  // namespace cajal::pipeline
