#include "pipeline/classify_regions.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "pipeline/phantom.h"

namespace cajal::pipeline {
namespace {

models::RunConfig small_run() {
  models::RunConfig run;
  run.task = "classification";
  run.spatial_dims = 3;
  run.patch_size = {4, 6, 8};            // D, H, W
  run.target_spacing = {2.0, 1.5, 1.0};  // field: x 8, y 9, z 8 mm
  run.labels = {"benign", "malignant"};
  return run;
}

core::Volume grid_volume(const std::string& orientation) {
  core::Geometry g;
  g.size = {40, 30, 20};
  g.spacing = {1.0, 1.5, 2.0};
  g.origin = {-10, 5, 20};
  g.direction = direction_of_orientation(orientation);
  return core::make_volume(g, core::PixelType::uint8);
}

// A cube of value `value` over voxel indices i 20..25, j 5..9, k 12..15.
void paint_cube(core::Volume& volume, float value) {
  const core::Index3& size = volume.geometry.size;
  for (std::int64_t k = 12; k <= 15; ++k) {
    for (std::int64_t j = 5; j <= 9; ++j) {
      for (std::int64_t i = 20; i <= 25; ++i) {
        volume.pixels[static_cast<std::size_t>(i + size[0] * (j + size[1] * k))] = value;
      }
    }
  }
}

Region only_region(const core::Volume& mask, double margin = 0) {
  const auto regions = mask_regions(mask, mask, "c", {std::nullopt, margin}, small_run());
  EXPECT_EQ(regions.size(), 1u);
  return regions.at(0);
}

void expect_vec(const core::Vec3& got, const core::Vec3& expected, double tolerance = 1e-9) {
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(got[a], expected[a], tolerance) << "axis " << a;
  }
}

TEST(ClassifyRegions, FindsCubeCentreInMillimetresForLps) {
  core::Volume mask = grid_volume("LPS");
  paint_cube(mask, 1);
  const Region region = only_region(mask);
  EXPECT_EQ(region.id, "c/lesion_1");
  expect_vec(region.centre_mm, {-10 + 22.5, 5 + 7 * 1.5, 20 + 13.5 * 2});
  expect_vec(region.box_mm, {6, 7.5, 8});
  EXPECT_EQ(region.voxels, 6 * 5 * 4);
  EXPECT_NEAR(region.volume_ml, 120 * 3.0 / 1000, 1e-12);
}

TEST(ClassifyRegions, FindsCubeCentreForRasStorage) {
  core::Volume mask = grid_volume("RAS");
  paint_cube(mask, 3);
  const Region region = only_region(mask);
  EXPECT_EQ(region.id, "c/lesion_3");
  expect_vec(region.centre_mm, {-10 - 22.5, 5 - 7 * 1.5, 20 + 13.5 * 2});
}

TEST(ClassifyRegions, FindsCubeCentreAndBoxForPermutedLipStorage) {
  core::Volume mask = grid_volume("LIP");  // i -> +x, j -> -z, k -> +y
  paint_cube(mask, 1);
  const Region region = only_region(mask, 5);
  expect_vec(region.centre_mm, {-10 + 22.5, 5 + 13.5 * 2, 20 - 7 * 1.5});
  expect_vec(region.box_mm, {6 + 10, 8 + 10, 7.5 + 10});
}

TEST(ClassifyRegions, CropOfLinearRampEqualsAnalyticValues) {
  core::Volume image = grid_volume("RAS");
  image.pixel_type = core::PixelType::float32;
  const auto ramp = [](const core::Vec3& p) { return 0.5 * p[0] - 2.0 * p[1] + 0.25 * p[2] + 7; };
  const core::Index3& size = image.geometry.size;
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i) {
        const core::Vec3 p = image.geometry.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        image.pixels[static_cast<std::size_t>(i + size[0] * (j + size[1] * k))] =
            static_cast<float>(ramp(p));
      }
    }
  }
  const models::RunConfig run = small_run();
  const core::Vec3 centre{-30.3, -9.1, 45.2};
  const Region region = centre_region(centre, {1, 1, 1}, "c", run);
  expect_vec(region.field_mm, {8, 9, 8});
  const engine::Tensor crop = crop_region(image, region, run);
  ASSERT_EQ(crop.dims(), (engine::Dims{1, 4, 6, 8}));
  for (std::int64_t d = 0; d < 4; ++d) {
    for (std::int64_t h = 0; h < 6; ++h) {
      for (std::int64_t w = 0; w < 8; ++w) {
        const core::Vec3 p{centre[0] + (static_cast<double>(w) - 3.5) * 1.0,
                           centre[1] + (static_cast<double>(h) - 2.5) * 1.5,
                           centre[2] + (static_cast<double>(d) - 1.5) * 2.0};
        EXPECT_NEAR(crop.data()[w + 8 * (h + 6 * d)], ramp(p), 1e-3) << d << " " << h << " " << w;
      }
    }
  }
}

TEST(ClassifyRegions, TwoDimensionalCropIsTheAxialSliceThroughTheCentre) {
  core::Volume image = grid_volume("LPS");
  image.pixel_type = core::PixelType::float32;
  const core::Index3& size = image.geometry.size;
  for (std::size_t v = 0; v < image.pixels.size(); ++v) {
    const auto i = static_cast<std::int64_t>(v);
    const core::Vec3 p = image.geometry.index_to_physical(
        {static_cast<double>(i % size[0]), static_cast<double>((i / size[0]) % size[1]),
         static_cast<double>(i / (size[0] * size[1]))});
    image.pixels[v] = static_cast<float>(p[0] + 10 * p[1] + 100 * p[2]);
  }
  models::RunConfig run = small_run();
  run.spatial_dims = 2;
  run.patch_size = {6, 8};          // H, W
  run.target_spacing = {1.5, 1.0};  // field: x 8, y 9 mm
  const core::Vec3 centre{10.2, 20.4, 47.0};
  const engine::Tensor crop = crop_region(image, centre_region(centre, {1, 1, 1}, "c", run), run);
  ASSERT_EQ(crop.dims(), (engine::Dims{1, 6, 8}));
  for (std::int64_t h = 0; h < 6; ++h) {
    for (std::int64_t w = 0; w < 8; ++w) {
      const double x = centre[0] + (static_cast<double>(w) - 3.5);
      const double y = centre[1] + (static_cast<double>(h) - 2.5) * 1.5;
      EXPECT_NEAR(crop.data()[w + 8 * h], x + 10 * y + 100 * centre[2], 1e-2) << h << " " << w;
    }
  }
}

TEST(ClassifyRegions, OutsideTheImageTakesTheNearestBorderValue) {
  core::Volume image = grid_volume("LPS");
  paint_cube(image, 9);
  const models::RunConfig run = small_run();
  // Far beyond the +x face: every sample clamps to the last i column, which is 0 there.
  const engine::Tensor crop =
      crop_region(image, centre_region({500, 15.5, 47}, {1, 1, 1}, "c", run), run);
  for (std::int64_t v = 0; v < engine::element_count(crop.dims()); ++v) {
    EXPECT_EQ(crop.data()[v], 0.0f);
  }
}

TEST(ClassifyRegions, CtNormalisationClipsThenScales) {
  core::Volume image = grid_volume("LPS");
  std::fill(image.pixels.begin(), image.pixels.end(), 500.0f);
  models::RunConfig run = small_run();
  run.normalization.kind = "ct";
  run.normalization.clip_min = -100;
  run.normalization.clip_max = 100;
  run.normalization.mean = 20;
  run.normalization.std = 40;
  const engine::Tensor crop = crop_region(image, whole_image_region(image, "c"), run);
  EXPECT_FLOAT_EQ(crop.data()[0], 2.0f);
}

TEST(ClassifyRegions, FieldEnlargesForBigBoxOnlyByOneCommonFactor) {
  const models::RunConfig run = small_run();
  expect_vec(fit_field({4, 4, 4}, run), {8, 9, 8});
  expect_vec(fit_field({20, 9, 8}, run), {20, 22.5, 20});
}

TEST(ClassifyRegions, WholeImageFieldIsItsPhysicalExtent) {
  const core::Volume image = grid_volume("RAS");
  const Region region = whole_image_region(image, "c");
  expect_vec(region.field_mm, {40, 45, 40});
  expect_vec(region.centre_mm, {-10 - 19.5, 5 - 14.5 * 1.5, 20 + 9.5 * 2});
}

TEST(ClassifyRegions, LabelComponentsAreNumberedInRasterOrderAndConnect26) {
  core::Volume mask = grid_volume("LPS");
  auto set = [&mask](std::int64_t i, std::int64_t j, std::int64_t k, float v) {
    mask.pixels[static_cast<std::size_t>(i + 40 * (j + 30 * k))] = v;
  };
  set(30, 2, 1, 2);   // first in raster order (k = 1)
  set(31, 3, 2, 2);   // touches it by a corner only: the same component
  set(2, 2, 10, 2);   // second component
  set(10, 10, 0, 1);  // another label: ignored
  const auto regions = mask_regions(mask, mask, "c", {2, 0.0}, small_run());
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].id, "c/label2_1");
  EXPECT_EQ(regions[0].voxels, 2);
  EXPECT_EQ(regions[1].id, "c/label2_2");
  expect_vec(regions[1].centre_mm, {-10 + 2, 5 + 3, 20 + 20});
}

TEST(ClassifyRegions, MaskOnAnotherGridIsRefusedNamingBothGrids) {
  const core::Volume image = grid_volume("LPS");
  core::Volume mask = grid_volume("LPS");
  mask.geometry.spacing[2] = 2.5;
  try {
    mask_regions(image, mask, "c", {}, small_run());
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("spacing [1, 1.5, 2]"), std::string::npos) << message;
    EXPECT_NE(message.find("spacing [1, 1.5, 2.5]"), std::string::npos) << message;
  }
  mask = grid_volume("RAS");
  EXPECT_THROW(mask_regions(image, mask, "c", {}, small_run()), Error);
}

}  // namespace
}  // namespace cajal::pipeline
