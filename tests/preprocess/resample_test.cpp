#include "pipeline/resample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "core/error.h"
#include "io/volume_io.h"

namespace cajal::pipeline {
namespace {

core::Volume make(const core::Geometry& g, float (*f)(const core::Vec3&)) {
  core::Volume v = core::make_volume(g, core::PixelType::float32);
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        v.pixels[n] = f(g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)}));
      }
    }
  }
  return v;
}

float linear_field(const core::Vec3& p) {
  return static_cast<float>(2.0 * p[0] - 3.0 * p[1] + 0.5 * p[2] + 7.0);
}

TEST(Resample, GridKeepsTheFieldOfViewCentred) {
  core::Geometry g;
  g.size = {10, 7, 3};
  g.spacing = {1.0, 1.0, 3.0};
  g.origin = {5.0, -2.0, 1.0};
  const auto r = resampled_grid(g, {2.0, 0.5, 2.0});
  // 10 mm / 2 = 5 voxels; 7 / 0.5 = 14; 9 / 2 = 4.5 -> round half away from zero = 5.
  EXPECT_EQ(r.size, (core::Index3{5, 14, 5}));
  // The first centre lies half a new voxel inside the old field of view's edge: edge at
  // origin - old/2, so along i: 5 - 0.5 + 1 = 5.5; along j: -2 - 0.5 + 0.25 = -2.25; along k the
  // 5 new voxels (10 mm) overhang the 9 mm by 0.5 mm each side: 1 - 1.5 - 0.5 + 1 = 0.
  EXPECT_NEAR(r.origin[0], 5.5, 1e-12);
  EXPECT_NEAR(r.origin[1], -2.25, 1e-12);
  EXPECT_NEAR(r.origin[2], 0.0, 1e-12);
}

TEST(Resample, LinearMatchesHandComputedTrilinearValue) {
  core::Geometry g;
  g.size = {2, 2, 2};
  core::Volume v = core::make_volume(g, core::PixelType::float32);
  v.pixels = {0, 1, 2, 3, 4, 5, 6, 7};  // value = i + 2 j + 4 k
  core::Geometry out;
  out.size = {1, 1, 1};
  out.origin = {0.25, 0.5, 0.75};
  const auto r = resample_linear(v, out);
  EXPECT_FLOAT_EQ(r.pixels.at(0), 0.25f + 2 * 0.5f + 4 * 0.75f);
}

TEST(Resample, LinearReproducesALinearFieldOnAnObliqueGrid) {
  core::Geometry g;
  g.size = {12, 9, 7};
  g.spacing = {1.1, 0.9, 2.5};
  g.origin = {-3, 4, 10};
  const double c = std::cos(0.3);
  const double s = std::sin(0.3);
  g.direction = {c, -s, 0, s, c, 0, 0, 0, 1};
  const auto input = make(g, linear_field);
  const auto grid = resampled_grid(g, {0.7, 1.3, 1.9});
  const auto r = resample_linear(input, grid);
  std::int64_t checked = 0;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      for (std::int64_t i = 0; i < grid.size[0]; ++i, ++n) {
        const auto p = grid.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        const auto at = g.physical_to_index(p);
        bool inside = true;
        for (int a = 0; a < 3; ++a) {
          inside = inside && at[a] >= 0 && at[a] <= static_cast<double>(g.size[a] - 1);
        }
        if (inside) {
          EXPECT_NEAR(r.pixels[n], linear_field(p), 2e-4) << i << "," << j << "," << k;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(Resample, NearestTakesTheNearestCentreAndRoundsTiesUp) {
  core::Geometry g;
  g.size = {4, 1, 1};
  core::Volume v = core::make_volume(g, core::PixelType::uint8);
  v.pixels = {10, 11, 12, 13};
  core::Geometry out = g;
  out.size = {3, 1, 1};
  out.spacing = {2, 1, 1};
  out.origin = {0.5, 0, 0};  // centres at 0.5, 2.5, 4.5: ties, and past the end
  const auto r = resample_nearest(v, out);
  EXPECT_EQ(r.pixels, (std::vector<float>{11, 13, 13}));
  out.origin = {-0.4, 0, 0};  // 0.4 away from voxel 0; 1.6 -> 2; 3.6 -> 4, clamped to 3
  EXPECT_EQ(resample_nearest(v, out).pixels, (std::vector<float>{10, 12, 13}));
}

TEST(Resample, RejectsGridsOfAnotherDirection) {
  core::Geometry g;
  g.size = {2, 2, 2};
  const auto v = core::make_volume(g, core::PixelType::float32);
  core::Geometry other = g;
  other.direction = {0, 1, 0, 1, 0, 0, 0, 0, 1};
  EXPECT_THROW(resample_linear(v, other), Error);
  EXPECT_THROW(resample_nearest(v, other), Error);
}

float wavy_field(const core::Vec3& p) {
  return static_cast<float>(100.0 * std::sin(p[0] * 0.31) * std::cos(p[1] * 0.23) +
                            40.0 * std::sin(p[2] * 0.17 + p[0] * 0.05));
}

// plastimatch (ITK's linear interpolator) resamples the same NIfTI onto our grid: the values
// agree wherever the new centre lies inside the input (plastimatch writes 0 outside; we clamp).
TEST(Resample, LinearMatchesPlastimatchOnAnObliqueGrid) {
  if (!std::filesystem::exists("/usr/bin/plastimatch")) {
    GTEST_SKIP() << "plastimatch is not installed (tools/install_deps.sh --test)";
  }
  core::Geometry g;
  g.size = {23, 19, 11};
  g.spacing = {0.9, 1.1, 2.5};
  g.origin = {-12, 7, 30};
  const double c = std::cos(0.4);
  const double s = std::sin(0.4);
  g.direction = {c, 0, s, 0, 1, 0, -s, 0, c};
  const auto input = make(g, wavy_field);
  const auto grid = resampled_grid(g, {1.7, 0.6, 1.3});
  const auto ours = resample_linear(input, grid);
  const auto dir =
      std::filesystem::temp_directory_path() / ("cajal_resample_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  io::write_volume(input, dir / "input.nii");
  io::write_volume(core::make_volume(grid, core::PixelType::float32), dir / "fixed.nii");
  const std::string command =
      "plastimatch resample --input " + (dir / "input.nii").string() + " --fixed " +
      (dir / "fixed.nii").string() + " --output " + (dir / "output.nii").string() +
      " --interpolation linear --output-type float > " + (dir / "log.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto theirs = io::read_volume(dir / "output.nii");
  std::filesystem::remove_all(dir);
  ASSERT_EQ(theirs.geometry.size, grid.size);
  ASSERT_TRUE(core::same_grid(theirs.geometry, grid));
  std::int64_t checked = 0;
  std::size_t n = 0;
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      for (std::int64_t i = 0; i < grid.size[0]; ++i, ++n) {
        const auto at = g.physical_to_index(grid.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)}));
        bool inside = true;
        for (int a = 0; a < 3; ++a) {
          inside = inside && at[a] >= 0.01 && at[a] <= static_cast<double>(g.size[a] - 1) - 0.01;
        }
        if (inside) {
          EXPECT_NEAR(ours.pixels[n], theirs.pixels[n], 1e-3) << i << "," << j << "," << k;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 3000);
}

}  // namespace
}  // namespace cajal::pipeline
