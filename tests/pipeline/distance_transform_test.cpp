#include "pipeline/distance_transform.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace cajal::pipeline {
namespace {

std::int64_t index_of(const core::Index3& size, std::int64_t i, std::int64_t j, std::int64_t k) {
  return i + size[0] * (j + size[1] * k);
}

TEST(DistanceTransform, SingleFeatureGivesEuclideanDistanceInMillimetres) {
  const core::Index3 size{6, 5, 4};
  const core::Vec3 spacing{0.5, 0.8, 2.5};
  std::vector<std::uint8_t> feature(6 * 5 * 4, 0);
  feature[index_of(size, 1, 2, 3)] = 1;
  const std::vector<double> squared = squared_distance_transform(feature, size, spacing);
  // Voxel (5, 0, 0): 4, 2 and 3 voxels away along i, j and k.
  EXPECT_DOUBLE_EQ(squared[index_of(size, 5, 0, 0)], 2.0 * 2.0 + 1.6 * 1.6 + 7.5 * 7.5);
  EXPECT_DOUBLE_EQ(squared[index_of(size, 1, 2, 3)], 0.0);
  EXPECT_DOUBLE_EQ(squared[index_of(size, 1, 2, 2)], 2.5 * 2.5);
}

TEST(DistanceTransform, NoFeatureGivesInfinityEverywhere) {
  const std::vector<double> squared =
      squared_distance_transform(std::vector<std::uint8_t>(24, 0), {4, 3, 2}, {1, 1, 1});
  for (double value : squared) {
    EXPECT_EQ(value, std::numeric_limits<double>::infinity());
  }
}

// Random sparse and dense feature sets on an anisotropic grid against an O(n²) search.
class DistanceTransformRandom : public ::testing::TestWithParam<double> {};

TEST_P(DistanceTransformRandom, MatchesBruteForceSearchWithAnisotropicSpacing) {
  const core::Index3 size{11, 7, 6};
  const core::Vec3 spacing{0.7, 1.3, 2.9};
  std::mt19937 random(7);
  std::bernoulli_distribution is_feature(GetParam());
  std::vector<std::uint8_t> feature(11 * 7 * 6);
  for (auto& value : feature) {
    value = is_feature(random) ? 1 : 0;
  }
  const std::vector<double> squared = squared_distance_transform(feature, size, spacing);
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i) {
        double expected = std::numeric_limits<double>::infinity();
        for (std::int64_t c = 0; c < size[2]; ++c) {
          for (std::int64_t b = 0; b < size[1]; ++b) {
            for (std::int64_t a = 0; a < size[0]; ++a) {
              if (feature[index_of(size, a, b, c)] != 0) {
                const double di = spacing[0] * static_cast<double>(i - a);
                const double dj = spacing[1] * static_cast<double>(j - b);
                const double dk = spacing[2] * static_cast<double>(k - c);
                expected = std::min(expected, di * di + dj * dj + dk * dk);
              }
            }
          }
        }
        const double actual = squared[index_of(size, i, j, k)];
        ASSERT_TRUE(std::isinf(expected) ? actual == expected : std::abs(actual - expected) <= 1e-9)
            << "voxel (" << i << ", " << j << ", " << k << "): " << actual << " vs " << expected;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FeatureDensity, DistanceTransformRandom,
                         ::testing::Values(0.005, 0.05, 0.5));

}  // namespace
}  // namespace cajal::pipeline
