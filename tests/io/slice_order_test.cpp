#include "io/slice_order.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cajal::io::detail {
namespace {

PlaneInput axial_plane() {
  PlaneInput plane;
  plane.orientation = {1, 0, 0, 0, 1, 0};
  plane.pixel_spacing = {0.5, 0.7};  // between rows, between columns
  plane.rows = 4;
  plane.columns = 3;
  return plane;
}

std::vector<SliceInput> stack(const std::vector<double>& z) {
  std::vector<SliceInput> slices;
  for (std::size_t s = 0; s < z.size(); ++s) {
    slices.push_back({{-10.0, 20.0, z[s]}, "1.2." + std::to_string(s)});
  }
  return slices;
}

TEST(OrderSlices, SortsByPositionAlongNormalNotByInputOrder) {
  const SliceLayout layout = order_slices(stack({5.0, -5.0, 0.0, 10.0}), axial_plane());
  ASSERT_TRUE(layout.problem.empty()) << layout.problem;
  EXPECT_EQ(layout.order, (std::vector<std::size_t>{1, 2, 0, 3}));
  EXPECT_DOUBLE_EQ(layout.geometry.origin[2], -5.0);
  EXPECT_DOUBLE_EQ(layout.geometry.spacing[2], 5.0);
}

TEST(OrderSlices, PixelSpacingIsRowsThenColumnsSoColumnSpacingGoesToAxisI) {
  const SliceLayout layout = order_slices(stack({0.0, 1.0}), axial_plane());
  EXPECT_DOUBLE_EQ(layout.geometry.spacing[0], 0.7);
  EXPECT_DOUBLE_EQ(layout.geometry.spacing[1], 0.5);
  EXPECT_EQ(layout.geometry.size, (core::Index3{3, 4, 2}));
}

TEST(OrderSlices, ThirdAxisIsRowCrossColumnForCoronal) {
  PlaneInput plane = axial_plane();
  plane.orientation = {1, 0, 0, 0, 0, -1};  // rows toward Left, columns toward Inferior
  std::vector<SliceInput> slices;
  for (int s = 0; s < 3; ++s) {
    slices.push_back({{0.0, 3.0 * (2 - s), 0.0}, std::to_string(s)});
  }
  const SliceLayout layout = order_slices(slices, plane);
  ASSERT_TRUE(layout.problem.empty()) << layout.problem;
  // normal = (1,0,0) x (0,0,-1) = (0,1,0): toward Posterior, so ascending y.
  EXPECT_EQ(layout.order, (std::vector<std::size_t>{2, 1, 0}));
  EXPECT_DOUBLE_EQ(layout.geometry.direction[4 + 1], 1.0);       // row y, column k
  EXPECT_DOUBLE_EQ(layout.geometry.direction[3 * 2 + 1], -1.0);  // row z, column j
}

TEST(OrderSlices, EqualPositionsAreReportedAsSeveralAcquisitions) {
  const SliceLayout layout = order_slices(stack({0.0, 2.0, 2.0, 4.0}), axial_plane());
  EXPECT_NE(layout.problem.find("same position"), std::string::npos) << layout.problem;
}

TEST(OrderSlices, OneMissingSliceIsNamedWithItsGap) {
  const SliceLayout layout = order_slices(stack({0.0, 2.5, 5.0, 10.0, 12.5}), axial_plane());
  EXPECT_NE(layout.problem.find("missing slices: gap of 5 mm"), std::string::npos)
      << layout.problem;
  EXPECT_NE(layout.problem.find("1 slice(s) missing"), std::string::npos) << layout.problem;
}

TEST(OrderSlices, UnevenSpacingIsRefused) {
  const SliceLayout layout = order_slices(stack({0.0, 2.0, 4.0, 7.0, 9.0}), axial_plane());
  EXPECT_NE(layout.problem.find("uneven slice spacing: gap of 3 mm"), std::string::npos)
      << layout.problem;
}

TEST(OrderSlices, RoundingOfPositionsWithinOnePercentIsAccepted) {
  const SliceLayout layout =
      order_slices(stack({0.0, 2.5001, 4.9998, 7.5003, 10.0}), axial_plane());
  EXPECT_TRUE(layout.problem.empty()) << layout.problem;
}

TEST(OrderSlices, GantryTiltIsRefusedWithItsAngle) {
  std::vector<SliceInput> slices;
  const double tilt = 10.0 * M_PI / 180.0;
  for (int s = 0; s < 4; ++s) {
    // Each slice moves 5 mm along z and 5 tan(10 deg) mm along y.
    slices.push_back({{0.0, 5.0 * s * std::tan(tilt), 5.0 * s}, std::to_string(s)});
  }
  const SliceLayout layout = order_slices(slices, axial_plane());
  EXPECT_NE(layout.problem.find("gantry tilt"), std::string::npos) << layout.problem;
  EXPECT_NE(layout.problem.find("(10.00 degrees)"), std::string::npos) << layout.problem;
}

TEST(OrderSlices, NonOrthogonalOrientationIsRefused) {
  PlaneInput plane = axial_plane();
  plane.orientation = {1, 0, 0, 0.2, 1, 0};
  EXPECT_FALSE(order_slices(stack({0.0, 1.0}), plane).problem.empty());
}

TEST(OrderSlices, SingleSliceTakesTheGivenSpacing) {
  PlaneInput plane = axial_plane();
  plane.single_slice_spacing = 0.8;
  const SliceLayout layout = order_slices(stack({3.0}), plane);
  EXPECT_TRUE(layout.problem.empty());
  EXPECT_DOUBLE_EQ(layout.geometry.spacing[2], 0.8);
}

}  // namespace
}  // namespace cajal::io::detail
