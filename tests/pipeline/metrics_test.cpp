#include "pipeline/metrics.h"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

core::Volume make_grid(const core::Index3& size, const core::Vec3& spacing = {1, 1, 1}) {
  core::Geometry geometry;
  geometry.size = size;
  geometry.spacing = spacing;
  return core::make_volume(geometry, core::PixelType::uint8, 0.0f);
}

// Sets voxels lo <= index < hi to `value`.
void fill_box(core::Volume& volume, const core::Index3& lo, const core::Index3& hi, float value) {
  const core::Index3& size = volume.geometry.size;
  for (std::int64_t k = lo[2]; k < hi[2]; ++k) {
    for (std::int64_t j = lo[1]; j < hi[1]; ++j) {
      for (std::int64_t i = lo[0]; i < hi[0]; ++i) {
        volume.pixels[i + size[0] * (j + size[1] * k)] = value;
      }
    }
  }
}

// A 10-voxel cube and the same cube moved 2 voxels along i, 1 mm spacing. Counted by hand:
// 488 surface voxels each. From one surface to the other, 288 voxels lie on the shared faces
// (0 mm), 64 are 1 mm away (36 in the layer next to the far face, 28 on the ring of the near
// face's interior), and 136 are 2 mm away (the 100 of the far face, the 36 at the centre of the
// near face): sum 336 mm in each direction.
TEST(CompareMasks, ShiftedCubeMatchesHandCountedDistances) {
  core::Volume pred = make_grid({20, 20, 20});
  core::Volume ref = make_grid({20, 20, 20});
  fill_box(pred, {5, 5, 5}, {15, 15, 15}, 1);
  fill_box(ref, {7, 5, 5}, {17, 15, 15}, 1);
  const LabelMetrics m = compare_masks(pred, ref, 1.0);
  EXPECT_EQ(m.presence, LabelPresence::both);
  EXPECT_EQ(m.overlap_voxels, 800);
  EXPECT_DOUBLE_EQ(m.dice, 0.8);
  ASSERT_TRUE(m.distances.has_value());
  const SurfaceDistances& d = *m.distances;
  EXPECT_EQ(d.pred_surface_voxels, 488);
  EXPECT_EQ(d.ref_surface_voxels, 488);
  EXPECT_DOUBLE_EQ(d.hausdorff, 2.0);
  EXPECT_DOUBLE_EQ(d.hd95, 2.0);
  EXPECT_DOUBLE_EQ(d.mean.pred_to_ref, 336.0 / 488.0);
  EXPECT_DOUBLE_EQ(d.mean.ref_to_pred, 336.0 / 488.0);
  EXPECT_DOUBLE_EQ(d.assd, 336.0 / 488.0);
  EXPECT_DOUBLE_EQ(m.surface_dice, (288.0 + 64.0) / 488.0);
  EXPECT_DOUBLE_EQ(compare_masks(pred, ref, 0.5).surface_dice, 288.0 / 488.0);
  EXPECT_DOUBLE_EQ(compare_masks(pred, ref, 2.0).surface_dice, 1.0);
  EXPECT_DOUBLE_EQ(m.pred_volume_ml, 1.0);
  EXPECT_DOUBLE_EQ(m.volume_difference_ml, 0.0);
  EXPECT_DOUBLE_EQ(*m.volume_difference_percent, 0.0);
}

// The same shift along each axis in turn, with different spacing per axis: the distance is the
// shift times that axis's spacing.
class ShiftedCubeAnisotropic : public ::testing::TestWithParam<int> {};

TEST_P(ShiftedCubeAnisotropic, HausdorffIsShiftTimesSpacingOfThatAxis) {
  const int axis = GetParam();
  const core::Vec3 spacing{0.5, 0.8, 2.5};
  core::Volume pred = make_grid({20, 20, 20}, spacing);
  core::Volume ref = make_grid({20, 20, 20}, spacing);
  core::Index3 lo{5, 5, 5};
  core::Index3 hi{15, 15, 15};
  fill_box(pred, lo, hi, 1);
  lo[axis] += 2;
  hi[axis] += 2;
  fill_box(ref, lo, hi, 1);
  const LabelMetrics m = compare_masks(pred, ref, 2.0);
  EXPECT_DOUBLE_EQ(m.dice, 0.8);
  ASSERT_TRUE(m.distances.has_value());
  EXPECT_DOUBLE_EQ(m.distances->hausdorff, 2.0 * spacing[axis]);
  EXPECT_DOUBLE_EQ(m.distances->max.pred_to_ref, 2.0 * spacing[axis]);
  EXPECT_DOUBLE_EQ(m.distances->max.ref_to_pred, 2.0 * spacing[axis]);
  EXPECT_DOUBLE_EQ(m.pred_volume_ml, 1000 * 0.5 * 0.8 * 2.5 / 1000.0);
}

INSTANTIATE_TEST_SUITE_P(Axis, ShiftedCubeAnisotropic, ::testing::Values(0, 1, 2));

// Two single voxels (1, 2, 3) voxels apart: the distance is the Euclidean norm in mm.
TEST(CompareMasks, SingleVoxelsAreTheirPhysicalDistanceApart) {
  const core::Vec3 spacing{0.5, 0.8, 2.5};
  core::Volume pred = make_grid({6, 6, 6}, spacing);
  core::Volume ref = make_grid({6, 6, 6}, spacing);
  fill_box(pred, {1, 1, 1}, {2, 2, 2}, 1);
  fill_box(ref, {2, 3, 4}, {3, 4, 5}, 1);
  const LabelMetrics m = compare_masks(pred, ref, 0.0);
  const double expected = std::sqrt(0.5 * 0.5 + 1.6 * 1.6 + 7.5 * 7.5);
  ASSERT_TRUE(m.distances.has_value());
  EXPECT_DOUBLE_EQ(m.dice, 0.0);
  EXPECT_DOUBLE_EQ(m.distances->hausdorff, expected);
  EXPECT_DOUBLE_EQ(m.distances->hd95, expected);
  EXPECT_DOUBLE_EQ(m.distances->assd, expected);
  EXPECT_DOUBLE_EQ(m.surface_dice, 0.0);
}

// A 6-voxel cube centred in a 10-voxel cube (2 voxels in from every face): from the inner
// surface every voxel is 2 mm from the outer one; from the outer surface the farthest voxel is
// a corner, 2 voxels off along each axis from the inner cube's corner: sqrt(12) mm.
TEST(CompareMasks, NestedCubesHaveHandComputedHausdorff) {
  core::Volume pred = make_grid({14, 14, 14});
  core::Volume ref = make_grid({14, 14, 14});
  fill_box(pred, {4, 4, 4}, {10, 10, 10}, 1);
  fill_box(ref, {2, 2, 2}, {12, 12, 12}, 1);
  const LabelMetrics m = compare_masks(pred, ref, 2.0);
  EXPECT_DOUBLE_EQ(m.dice, 2.0 * 216.0 / (216.0 + 1000.0));
  ASSERT_TRUE(m.distances.has_value());
  const SurfaceDistances& d = *m.distances;
  EXPECT_EQ(d.pred_surface_voxels, 216 - 64);
  EXPECT_EQ(d.ref_surface_voxels, 1000 - 512);
  EXPECT_DOUBLE_EQ(d.max.pred_to_ref, 2.0);
  EXPECT_DOUBLE_EQ(d.mean.pred_to_ref, 2.0);
  EXPECT_DOUBLE_EQ(d.max.ref_to_pred, std::sqrt(12.0));
  EXPECT_DOUBLE_EQ(d.hausdorff, std::sqrt(12.0));
  EXPECT_DOUBLE_EQ(m.volume_difference_ml, (216.0 - 1000.0) / 1000.0);
  EXPECT_DOUBLE_EQ(*m.volume_difference_percent, 100.0 * (216.0 - 1000.0) / 1000.0);
}

// An 11-voxel line against the voxel at its end: distances 0, 1, ..., 10 mm one way, 0 the
// other. The 95th percentile lies between ranks: 0.95 * 10 = 9.5 mm.
TEST(CompareMasks, Hd95InterpolatesBetweenClosestRanks) {
  core::Volume pred = make_grid({13, 3, 3});
  core::Volume ref = make_grid({13, 3, 3});
  fill_box(pred, {1, 1, 1}, {12, 2, 2}, 1);
  fill_box(ref, {1, 1, 1}, {2, 2, 2}, 1);
  const LabelMetrics m = compare_masks(pred, ref, 2.0);
  ASSERT_TRUE(m.distances.has_value());
  const SurfaceDistances& d = *m.distances;
  EXPECT_DOUBLE_EQ(d.p95.pred_to_ref, 9.5);
  EXPECT_DOUBLE_EQ(d.p95.ref_to_pred, 0.0);
  EXPECT_DOUBLE_EQ(d.hd95, 9.5);
  EXPECT_DOUBLE_EQ(d.hausdorff, 10.0);
  EXPECT_DOUBLE_EQ(d.assd, 55.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.surface_dice, 4.0 / 12.0);  // 0, 1, 2 mm and the single voxel
}

// A mask filling the whole image has its surface on the image's edge, not none at all.
TEST(CompareMasks, MaskFillingTheImageHasItsSurfaceOnTheEdge) {
  core::Volume pred = make_grid({5, 4, 3});
  fill_box(pred, {0, 0, 0}, {5, 4, 3}, 1);
  const LabelMetrics m = compare_masks(pred, pred, 2.0);
  ASSERT_TRUE(m.distances.has_value());
  EXPECT_EQ(m.distances->pred_surface_voxels, 5 * 4 * 3 - 3 * 2 * 1);
  EXPECT_DOUBLE_EQ(m.distances->hausdorff, 0.0);
  EXPECT_DOUBLE_EQ(m.dice, 1.0);
  EXPECT_DOUBLE_EQ(m.surface_dice, 1.0);
}

// A 5-voxel cube with one inner voxel removed: the removed voxel's 6 face neighbours join the
// surface (2 of them were on it already), its edge and corner neighbours do not. 98 + 4 voxels.
TEST(CompareMasks, SurfaceIsVoxelsWithAFaceNeighbourOutside) {
  core::Volume pred = make_grid({7, 7, 7});
  fill_box(pred, {1, 1, 1}, {6, 6, 6}, 1);
  fill_box(pred, {4, 4, 3}, {5, 5, 4}, 0);
  const LabelMetrics m = compare_masks(pred, pred, 2.0);
  ASSERT_TRUE(m.distances.has_value());
  EXPECT_EQ(m.distances->pred_surface_voxels, 102);
}

TEST(CompareMasks, BothEmptyScoreDiceOneAndNoDistances) {
  const core::Volume empty = make_grid({5, 5, 5});
  const LabelMetrics m = compare_masks(empty, empty, 2.0);
  EXPECT_EQ(m.presence, LabelPresence::neither);
  EXPECT_DOUBLE_EQ(m.dice, 1.0);
  EXPECT_DOUBLE_EQ(m.surface_dice, 1.0);
  EXPECT_FALSE(m.distances.has_value());
  EXPECT_DOUBLE_EQ(m.volume_difference_ml, 0.0);
  EXPECT_FALSE(m.volume_difference_percent.has_value());
}

TEST(CompareMasks, OneEmptyScoresZeroAndNoDistances) {
  const core::Volume empty = make_grid({5, 5, 5}, {2, 2, 2});
  core::Volume full = make_grid({5, 5, 5}, {2, 2, 2});
  fill_box(full, {1, 1, 1}, {3, 3, 3}, 1);
  const LabelMetrics missed = compare_masks(empty, full, 2.0);
  EXPECT_EQ(missed.presence, LabelPresence::only_in_ref);
  EXPECT_DOUBLE_EQ(missed.dice, 0.0);
  EXPECT_DOUBLE_EQ(missed.surface_dice, 0.0);
  EXPECT_FALSE(missed.distances.has_value());
  EXPECT_DOUBLE_EQ(missed.volume_difference_ml, -8 * 8.0 / 1000.0);
  EXPECT_DOUBLE_EQ(*missed.volume_difference_percent, -100.0);
  const LabelMetrics invented = compare_masks(full, empty, 2.0);
  EXPECT_EQ(invented.presence, LabelPresence::only_in_pred);
  EXPECT_DOUBLE_EQ(invented.dice, 0.0);
  EXPECT_FALSE(invented.distances.has_value());
  EXPECT_FALSE(invented.volume_difference_percent.has_value());
}

TEST(CompareMasks, RefusesANegativeTolerance) {
  const core::Volume empty = make_grid({3, 3, 3});
  EXPECT_THROW(compare_masks(empty, empty, -1.0), Error);
}

// The message names the field, the reference's value as expected and the prediction's as got.
std::string grid_error(const core::Volume& pred, const core::Volume& ref) {
  try {
    compare_masks(pred, ref, 2.0);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CheckSameGrid, RefusesDifferentSizeSpacingOriginOrDirection) {
  const core::Volume ref = make_grid({4, 5, 6});
  EXPECT_EQ(grid_error(make_grid({4, 5, 7}), ref),
            "prediction grid size: expected 4 x 5 x 6 (the reference's), got 4 x 5 x 7");
  EXPECT_EQ(grid_error(make_grid({4, 5, 6}, {1, 1, 1.01}), ref),
            "prediction spacing (mm): expected [1, 1, 1] (the reference's), got [1, 1, 1.01]");
  core::Volume moved = make_grid({4, 5, 6});
  moved.geometry.origin = {0, 0.002, 0};
  EXPECT_EQ(grid_error(moved, ref),
            "prediction origin (mm, LPS): expected [0, 0, 0] (the reference's), got [0, 0.002, 0]");
  core::Volume flipped = make_grid({4, 5, 6});
  flipped.geometry.direction = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_EQ(grid_error(flipped, ref),
            "prediction direction row 0: expected [1, 0, 0] (the reference's), got [-1, 0, 0]");
  core::Volume nudged = make_grid({4, 5, 6});
  nudged.geometry.origin = {0.0005, 0, 0};
  EXPECT_EQ(grid_error(nudged, ref), "no error");
}

// Labels 1 and 2 in both maps, 3 only in the prediction, 4 only in the reference.
class EvaluateSegmentation : public ::testing::Test {
 protected:
  void SetUp() override {
    fill_box(pred_, {1, 1, 1}, {4, 4, 4}, 1);
    fill_box(ref_, {1, 1, 1}, {4, 4, 4}, 1);
    fill_box(pred_, {5, 1, 1}, {8, 4, 4}, 2);
    fill_box(ref_, {6, 1, 1}, {9, 4, 4}, 2);
    fill_box(pred_, {1, 6, 1}, {3, 8, 3}, 3);
    fill_box(ref_, {5, 6, 5}, {7, 8, 7}, 4);
  }
  core::Volume pred_ = make_grid({10, 10, 10});
  core::Volume ref_ = make_grid({10, 10, 10});
};

TEST_F(EvaluateSegmentation, ScoresEveryLabelOfEitherImageByDefault) {
  const Evaluation e = evaluate_segmentation(pred_, ref_, {});
  ASSERT_EQ(e.labels.size(), 4u);
  EXPECT_EQ(e.labels[0].label.value, 1);
  EXPECT_DOUBLE_EQ(e.labels[0].dice, 1.0);
  EXPECT_EQ(e.labels[1].label.value, 2);
  EXPECT_DOUBLE_EQ(e.labels[1].dice, 2.0 * 18.0 / 54.0);
  EXPECT_DOUBLE_EQ(e.labels[1].distances->hausdorff, 1.0);
  EXPECT_EQ(e.labels[2].presence, LabelPresence::only_in_pred);
  EXPECT_EQ(e.labels[3].presence, LabelPresence::only_in_ref);
  EXPECT_EQ(e.only_in_pred, std::vector<std::int64_t>{3});
  EXPECT_EQ(e.only_in_ref, std::vector<std::int64_t>{4});
  EXPECT_EQ(e.pred_labels, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_F(EvaluateSegmentation, ScoresOnlyTheChosenLabelsWithTheirNames) {
  EvaluationOptions options;
  options.labels = {parse_label_spec("2=Spleen"), parse_label_spec("7")};
  const Evaluation e = evaluate_segmentation(pred_, ref_, options);
  ASSERT_EQ(e.labels.size(), 2u);
  EXPECT_EQ(e.labels[0].label.name, "Spleen");
  EXPECT_DOUBLE_EQ(e.labels[0].dice, 2.0 * 18.0 / 54.0);
  EXPECT_EQ(e.labels[1].presence, LabelPresence::neither);
  EXPECT_EQ(e.only_in_pred, std::vector<std::int64_t>{3});
}

TEST_F(EvaluateSegmentation, RefusesDuplicateLabelsAndNonIntegerVoxels) {
  EvaluationOptions options;
  options.labels = {parse_label_spec("2"), parse_label_spec("2=Spleen")};
  EXPECT_THROW(evaluate_segmentation(pred_, ref_, options), Error);
  pred_.pixels[5] = 0.5f;
  try {
    evaluate_segmentation(pred_, ref_, {});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "prediction voxel (5, 0, 0): expected an integer label, got 0.500000");
  }
}

TEST(ParseLabelSpec, ReadsNumbersAndNamedNumbers) {
  EXPECT_EQ(parse_label_spec("5").value, 5);
  EXPECT_EQ(parse_label_spec("5").name, "");
  EXPECT_EQ(parse_label_spec("12=Kidney_L").value, 12);
  EXPECT_EQ(parse_label_spec("12=Kidney_L").name, "Kidney_L");
  for (const char* bad : {"", "x", "0", "5=", "5x", "=Liver", "1.5"}) {
    EXPECT_THROW(parse_label_spec(bad), Error) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace cajal::pipeline
