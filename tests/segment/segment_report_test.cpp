#include "pipeline/segment_report.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "pipeline/sha256.h"

namespace cajal::pipeline {
namespace {

using core::Index3;
using core::Vec3;

// A grid that catches mixed-up axes: non-unit, unequal spacing and a direction that rotates 30
// degrees about z and swaps the roles of j and k (still orthonormal).
core::Geometry odd_grid() {
  core::Geometry g;
  g.size = {6, 5, 4};
  g.spacing = {0.5, 2.0, 3.0};
  g.origin = {10.0, -20.0, 30.0};
  const double c = std::cos(M_PI / 6);
  const double s = std::sin(M_PI / 6);
  // columns: axis i -> (c, s, 0), axis j -> (0, 0, -1), axis k -> (-s, c, 0)
  g.direction = {c, 0, -s, s, 0, c, 0, -1, 0};
  return g;
}

float intensity(const Index3& v) {
  return static_cast<float>(v[0] * 3 - v[1] * 7 + v[2] * v[2] * 11 - 40);
}

// Physical point of a voxel, written out here rather than through Geometry.
Vec3 physical(const core::Geometry& g, const Index3& v) {
  Vec3 p = g.origin;
  for (int r = 0; r < 3; ++r) {
    for (int a = 0; a < 3; ++a) {
      p[r] += g.direction[3 * r + a] * g.spacing[a] * static_cast<double>(v[a]);
    }
  }
  return p;
}

struct Fixture {
  core::Volume image;
  core::Volume labels;
  std::vector<Index3> inner;  // label 1: a box away from every edge
  std::vector<Index3> edge;   // label 2: voxels on the last i plane
};

Fixture make_fixture() {
  Fixture f;
  f.image = core::make_volume(odd_grid(), core::PixelType::int16);
  f.labels = core::make_volume(odd_grid(), core::PixelType::uint8);
  const Index3 size = f.image.geometry.size;
  auto at = [&size](const Index3& v) { return v[0] + size[0] * (v[1] + size[1] * v[2]); };
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i) {
        f.image.pixels[at({i, j, k})] = intensity({i, j, k});
      }
    }
  }
  for (std::int64_t k = 1; k <= 2; ++k) {
    for (std::int64_t j = 1; j <= 3; ++j) {
      for (std::int64_t i = 2; i <= 3; ++i) {
        f.inner.push_back({i, j, k});
      }
    }
  }
  f.inner.push_back({1, 2, 1});
  f.edge = {{5, 1, 1}, {5, 2, 1}, {5, 2, 2}};  // only the last i plane is an edge
  for (const Index3& v : f.inner) {
    f.labels.pixels[at(v)] = 1;
  }
  for (const Index3& v : f.edge) {
    f.labels.pixels[at(v)] = 2;
  }
  f.labels.pixels[at({0, 4, 0})] = 7;  // present but not named: not measured
  return f;
}

void expect_stats(const StructureStats& stats, const std::vector<Index3>& voxels,
                  const core::Geometry& g, bool touches_edge) {
  const double n = static_cast<double>(voxels.size());
  EXPECT_EQ(stats.voxel_count, static_cast<std::int64_t>(voxels.size()));
  EXPECT_NEAR(stats.volume_ml, n * 0.5 * 2.0 * 3.0 / 1000.0, 1e-12);
  Vec3 centroid{};
  Vec3 low{INFINITY, INFINITY, INFINITY};
  Vec3 high{-INFINITY, -INFINITY, -INFINITY};
  double sum = 0;
  double lowest = INFINITY;
  double highest = -INFINITY;
  for (const Index3& v : voxels) {
    const Vec3 p = physical(g, v);
    for (int c = 0; c < 3; ++c) {
      centroid[c] += p[c] / n;
    }
    sum += intensity(v);
    lowest = std::min<double>(lowest, intensity(v));
    highest = std::max<double>(highest, intensity(v));
  }
  // The box in mm: every corner of the index box, not only the voxels.
  for (std::int64_t i : {stats.bbox_min[0], stats.bbox_max[0]}) {
    for (std::int64_t j : {stats.bbox_min[1], stats.bbox_max[1]}) {
      for (std::int64_t k : {stats.bbox_min[2], stats.bbox_max[2]}) {
        const Vec3 p = physical(g, {i, j, k});
        for (int c = 0; c < 3; ++c) {
          low[c] = std::min(low[c], p[c]);
          high[c] = std::max(high[c], p[c]);
        }
      }
    }
  }
  const double mean = sum / n;
  double squares = 0;
  for (const Index3& v : voxels) {
    squares += (intensity(v) - mean) * (intensity(v) - mean);
  }
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(stats.centroid_mm[c], centroid[c], 1e-9) << "centroid axis " << c;
    EXPECT_NEAR(stats.bbox_min_mm[c], low[c], 1e-9) << "bbox min axis " << c;
    EXPECT_NEAR(stats.bbox_max_mm[c], high[c], 1e-9) << "bbox max axis " << c;
  }
  EXPECT_NEAR(stats.mean, mean, 1e-9);
  EXPECT_NEAR(stats.std, std::sqrt(squares / n), 1e-9);
  EXPECT_EQ(stats.min, lowest);
  EXPECT_EQ(stats.max, highest);
  EXPECT_EQ(stats.touches_edge, touches_edge);
}

TEST(SegmentReport, MeasuresStructuresOnAnObliqueAnisotropicGrid) {
  const Fixture f = make_fixture();
  const std::vector<LabelName> names{{2, "Edge"}, {1, "Inner"}, {3, "Missing"}};
  const std::vector<StructureStats> stats = measure_structures(f.image, f.labels, names);
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[0].name, "Edge");
  expect_stats(stats[0], f.edge, f.image.geometry, true);
  expect_stats(stats[1], f.inner, f.image.geometry, false);
  EXPECT_EQ(stats[1].bbox_min, (Index3{1, 1, 1}));
  EXPECT_EQ(stats[1].bbox_max, (Index3{3, 3, 2}));
  EXPECT_EQ(stats[2].voxel_count, 0);
  EXPECT_EQ(stats[2].volume_ml, 0);
}

// One structure along a row of 11 voxels (lanes of four and a remainder of three), its lowest
// and highest intensity moved through every position; whole values, so the sums are exact.
TEST(SegmentReport, FindsTheExtremesAndSumsAnywhereInARun) {
  core::Geometry g;
  g.size = {13, 1, 1};
  for (std::size_t low_at = 1; low_at <= 11; ++low_at) {
    core::Volume image = core::make_volume(g, core::PixelType::int16, 5);
    core::Volume labels = core::make_volume(g, core::PixelType::uint8);
    double sum = 0;
    double squares = 0;
    for (std::size_t i = 1; i <= 11; ++i) {
      labels.pixels[i] = 1;
      image.pixels[i] = static_cast<float>(i * i % 7);
    }
    const std::size_t high_at = 12 - low_at;
    image.pixels[low_at] = -30;
    image.pixels[high_at] = high_at == low_at ? -30.0f : 40.0f;
    image.pixels[0] = -99;  // outside the structure
    image.pixels[12] = 99;
    double highest = -1000;
    for (std::size_t i = 1; i <= 11; ++i) {
      sum += image.pixels[i];
      squares += static_cast<double>(image.pixels[i]) * image.pixels[i];
      highest = std::max<double>(highest, image.pixels[i]);
    }
    const auto stats = measure_structures(image, labels, {{1, "Run"}});
    EXPECT_EQ(stats[0].min, -30) << "lowest at " << low_at;
    EXPECT_EQ(stats[0].max, highest) << "highest at " << high_at;
    EXPECT_EQ(stats[0].mean, sum / 11) << low_at;
    EXPECT_NEAR(stats[0].std, std::sqrt(squares / 11 - (sum / 11) * (sum / 11)), 1e-12);
  }
}

TEST(SegmentReport, ListsAnEmptyStructureWithNullMeasurements) {
  const Fixture f = make_fixture();
  const auto stats = measure_structures(f.image, f.labels, {{3, "Missing"}, {1, "Inner"}});
  const nlohmann::json empty = to_json(stats[0]);
  EXPECT_TRUE(empty["empty"].get<bool>());
  EXPECT_EQ(empty["voxel_count"], 0);
  EXPECT_TRUE(empty["centroid_mm"].is_null());
  EXPECT_TRUE(empty["intensity"].is_null());
  const nlohmann::json inner = to_json(stats[1]);
  EXPECT_FALSE(inner["empty"].get<bool>());
  EXPECT_EQ(inner["bbox_index"]["max"], nlohmann::json({3, 3, 2}));
  EXPECT_EQ(inner["touches_edge"], false);
}

TEST(SegmentReport, RefusesLabelsOnAnotherGrid) {
  Fixture f = make_fixture();
  f.labels.geometry.origin[1] += 1.0;
  EXPECT_THROW(measure_structures(f.image, f.labels, {{1, "Inner"}}), Error);
}

TEST(SegmentReport, HashesPixelsInTheirStoredTypeLittleEndian) {
  core::Geometry g;
  g.size = {3, 1, 1};
  core::Volume volume = core::make_volume(g, core::PixelType::int16);
  volume.pixels = {1, -2, 258};
  EXPECT_EQ(pixel_data_sha256(volume), sha256_hex(std::string("\x01\x00\xfe\xff\x02\x01", 6)));
  volume.pixel_type = core::PixelType::uint8;
  volume.pixels = {1, 2, 255};
  EXPECT_EQ(pixel_data_sha256(volume), sha256_hex("\x01\x02\xff"));
}

TEST(SegmentReport, JsonHasEverySchemaSection) {
  SegmentReport report;
  report.timings_seconds = {{"read", 0.5}, {"write", 0.25}};
  const nlohmann::json doc = to_json(report);
  for (const char* key :
       {"schema", "input", "model", "cajal", "timings_seconds", "preprocessing", "inference",
        "postprocessing", "dicom_export", "warnings", "outputs", "structures"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  EXPECT_EQ(doc["schema"], kSegmentReportSchema);
  EXPECT_DOUBLE_EQ(doc["timings_seconds"]["total"].get<double>(), 0.75);
  EXPECT_TRUE(doc["input"]["dicom"].is_null());
}

}  // namespace
}  // namespace cajal::pipeline
