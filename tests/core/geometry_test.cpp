#include "core/geometry.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::core {
namespace {

TEST(OrientationCode, IdentityDirectionIsLps) {
  EXPECT_EQ(orientation_code({1, 0, 0, 0, 1, 0, 0, 0, 1}), "LPS");
}

TEST(OrientationCode, RasStoredNiftiIsRas) {
  // A NIfTI stored RAS has its first two axes flipped in LPS.
  EXPECT_EQ(orientation_code({-1, 0, 0, 0, -1, 0, 0, 0, 1}), "RAS");
}

TEST(OrientationCode, CoronalSliceStackIsLsa) {
  // KmeansTest_T1UCharRaw: i toward Left, j toward Superior, k toward Anterior.
  EXPECT_EQ(orientation_code({1, 0, 0, 0, 0, -1, 0, 1, 0}), "LSA");
}

TEST(OrientationCode, ObliqueAxisTakesItsLargestComponent) {
  const double c = 0.8;
  const double s = 0.6;
  EXPECT_EQ(orientation_code({c, -s, 0, s, c, 0, 0, 0, 1}), "LPS");
  EXPECT_EQ(orientation_code({s, -c, 0, c, s, 0, 0, 0, 1}), "PRS");
}

TEST(Geometry, IndexToPhysicalAppliesSpacingThenDirectionThenOrigin) {
  Geometry g;
  g.size = {10, 20, 30};
  g.spacing = {0.5, 2.0, 3.0};
  g.origin = {10, 20, 30};
  g.direction = {1, 0, 0, 0, 0, -1, 0, 1, 0};
  const Vec3 p = g.index_to_physical({2, 3, 4});
  EXPECT_DOUBLE_EQ(p[0], 11.0);
  EXPECT_DOUBLE_EQ(p[1], 8.0);
  EXPECT_DOUBLE_EQ(p[2], 36.0);
}

TEST(Geometry, PhysicalToIndexInvertsIndexToPhysical) {
  Geometry g;
  g.spacing = {0.7, 0.9, 2.5};
  g.origin = {-100, 50, 7};
  g.direction = {0.8, -0.6, 0, 0.6, 0.8, 0, 0, 0, 1};
  const Vec3 index = g.physical_to_index(g.index_to_physical({1.5, -2.0, 7.25}));
  EXPECT_NEAR(index[0], 1.5, 1e-12);
  EXPECT_NEAR(index[1], -2.0, 1e-12);
  EXPECT_NEAR(index[2], 7.25, 1e-12);
}

TEST(ValidateGeometry, RejectsNonOrthonormalDirection) {
  Geometry g;
  g.size = {1, 1, 1};
  g.direction = {1, 0, 0, 0.1, 1, 0, 0, 0, 1};
  EXPECT_THROW(validate_geometry(g, "test"), Error);
}

TEST(ValidateGeometry, RejectsZeroSpacing) {
  Geometry g;
  g.size = {1, 1, 1};
  g.spacing = {1, 0, 1};
  EXPECT_THROW(validate_geometry(g, "test"), Error);
}

TEST(SameGrid, DetectsOriginShiftBeyondTolerance) {
  Geometry a;
  a.size = {2, 2, 2};
  Geometry b = a;
  EXPECT_TRUE(same_grid(a, b));
  b.origin[2] += 0.01;
  EXPECT_FALSE(same_grid(a, b));
}

}  // namespace
}  // namespace cajal::core
