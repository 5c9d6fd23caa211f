#include "engine/train/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "engine/train/random.h"

namespace cajal::engine::train {
namespace {

Tensor ramp(const Dims& dims) {
  Tensor t(dims);
  for (std::int64_t i = 0; i < t.size(); ++i)
    t.data()[i] = static_cast<float>(i);
  return t;
}

// Labels 0..3 in blocks, so nearest resampling has something to keep.
Tensor blocks(const Dims& dims) {
  Tensor t(dims);
  for (std::int64_t i = 0; i < t.size(); ++i)
    t.data()[i] = static_cast<float>((i / 7) % 4);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dims() == b.dims() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

AugmentConfig everything() {
  return {.flip_probability = 0.5,
          .rotate90_probability = 0.5,
          .rotate_probability = 1.0,
          .scale_probability = 1.0,
          .elastic_probability = 1.0,
          .elastic_alpha = 2.0,
          .elastic_sigma = 2.0,
          .intensity_scale_probability = 1.0,
          .intensity_shift_probability = 1.0,
          .noise_probability = 1.0};
}

TEST(Augment, FlipTwiceIsIdentity2DAnd3D) {
  for (const Dims& dims : {Dims{2, 5, 6}, Dims{1, 3, 4, 5}}) {
    const auto image = ramp(dims);
    const Dims spatial(dims.begin() + 1, dims.end());
    const auto label = blocks(spatial);
    for (int axis = 0; axis < static_cast<int>(spatial.size()); ++axis) {
      auto i = image;
      auto l = label;
      flip(i, &l, axis);
      EXPECT_FALSE(same_bytes(i, image));
      flip(i, &l, axis);
      EXPECT_TRUE(same_bytes(i, image)) << axis;
      EXPECT_TRUE(same_bytes(l, label)) << axis;
    }
  }
}

TEST(Augment, FlipReversesTheLastAxis) {
  auto image = ramp({1, 2, 3});  // rows 0 1 2 / 3 4 5
  flip(image, nullptr, 1);
  EXPECT_EQ(image.data()[0], 2.0f);
  EXPECT_EQ(image.data()[5], 3.0f);
}

TEST(Augment, FourQuarterTurnsAreIdentityAndOneTurnRotates) {
  const auto image = ramp({2, 4, 4});
  auto i = image;
  rotate90(i, nullptr, 0, 1, 1);
  EXPECT_FALSE(same_bytes(i, image));
  // (i_a, i_b) takes (i_b, n - 1 - i_a): out(0, 0) = in(0, 3) = 3.
  EXPECT_EQ(i.data()[0], 3.0f);
  rotate90(i, nullptr, 0, 1, 3);
  EXPECT_TRUE(same_bytes(i, image));
  auto non_square = ramp({1, 3, 4});
  EXPECT_THROW(rotate90(non_square, nullptr, 0, 1, 1), Error);
}

TEST(Augment, SameSeedSameResultOtherSeedOtherResult) {
  for (const Dims& dims : {Dims{2, 12, 12}, Dims{1, 6, 8, 8}}) {
    const Dims spatial(dims.begin() + 1, dims.end());
    auto a = ramp(dims), b = ramp(dims), c = ramp(dims);
    auto la = blocks(spatial), lb = blocks(spatial), lc = blocks(spatial);
    augment(a, &la, everything(), 11);
    augment(b, &lb, everything(), 11);
    augment(c, &lc, everything(), 12);
    EXPECT_TRUE(same_bytes(a, b));
    EXPECT_TRUE(same_bytes(la, lb));
    EXPECT_FALSE(same_bytes(a, c));
  }
}

// Nearest resampling: every output label is a label of the input (or 0 outside it).
TEST(Augment, LabelValuesArePreserved) {
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    auto image = ramp({1, 5, 9, 9});
    auto label = blocks({5, 9, 9});
    for (auto& v : label.values())
      v = v * 10.0f + 1.0f;  // labels 1, 11, 21, 31
    augment(image, &label, everything(), seed);
    std::set<float> values(label.values().begin(), label.values().end());
    for (const float v : values) {
      EXPECT_TRUE(v == 0.0f || v == 1.0f || v == 11.0f || v == 21.0f || v == 31.0f) << v;
    }
    EXPECT_GE(values.size(), 3u);
  }
}

TEST(Augment, NoChangeWhenAllProbabilitiesAreZero) {
  const auto image = ramp({1, 4, 5});
  auto i = image;
  augment(i, nullptr, {.flip_probability = 0.0}, 3);
  EXPECT_TRUE(same_bytes(i, image));
}

TEST(Augment, IntensityScaleAndShiftStayInRange) {
  const Tensor image({1, 4, 4}, 1.0f);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    auto i = image;
    augment(i, nullptr,
            {.flip_probability = 0.0,
             .intensity_scale_probability = 1.0,
             .min_intensity_scale = 0.5,
             .max_intensity_scale = 2.0,
             .intensity_shift_probability = 1.0,
             .max_intensity_shift = 0.25},
            seed);
    EXPECT_GE(i.data()[0], 0.25f);
    EXPECT_LE(i.data()[0], 2.25f);
    EXPECT_EQ(i.data()[0], i.data()[15]);  // one scale and shift per channel
  }
}

// Rotation by 0 degrees and scale 1 resample at the voxel centres: linear interpolation returns
// the input exactly.
TEST(Augment, IdentityResamplingKeepsValues) {
  const auto image = ramp({2, 4, 5, 6});
  auto i = image;
  auto label = blocks({4, 5, 6});
  const auto l0 = label;
  augment(i, &label,
          {.flip_probability = 0.0,
           .rotate_probability = 1.0,
           .max_rotation_degrees = 0.0,
           .scale_probability = 1.0,
           .min_scale = 1.0,
           .max_scale = 1.0},
          5);
  EXPECT_TRUE(same_bytes(i, image));
  EXPECT_TRUE(same_bytes(label, l0));
}

// Linear interpolation is exact for a linear image, so after a rotation the interior is still a
// plane with gradient norm 1 (a rotation keeps lengths), and after scaling by s its norm is 1 / s.
TEST(Augment, RotationKeepsLengthsAndScalingDividesThem) {
  const auto gradient_norm = [](const Tensor& t, std::int64_t y, std::int64_t x) {
    const auto at = [&](std::int64_t yy, std::int64_t xx) {
      return double{t.data()[yy * 21 + xx]};
    };
    const double gx = (at(y, x + 1) - at(y, x - 1)) / 2.0;
    const double gy = (at(y + 1, x) - at(y - 1, x)) / 2.0;
    return std::sqrt(gx * gx + gy * gy);
  };
  Tensor plane({1, 21, 21});
  for (std::int64_t i = 0; i < plane.size(); ++i) {
    plane.data()[i] = static_cast<float>(i % 21) + 0.5f * static_cast<float>(i / 21);
  }
  const double norm = std::sqrt(1.25);
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    auto rotated = plane;
    augment(rotated, nullptr,
            {.flip_probability = 0.0, .rotate_probability = 1.0, .max_rotation_degrees = 30.0},
            seed);
    EXPECT_FALSE(same_bytes(rotated, plane));
    EXPECT_NEAR(gradient_norm(rotated, 10, 10), norm, 1e-4);
    EXPECT_NEAR(gradient_norm(rotated, 8, 12), norm, 1e-4);
    auto scaled = plane;
    augment(scaled, nullptr,
            {.flip_probability = 0.0, .scale_probability = 1.0, .min_scale = 1.5, .max_scale = 1.5},
            seed);
    EXPECT_NEAR(gradient_norm(scaled, 10, 10), norm / 1.5, 1e-4);
    EXPECT_NEAR(scaled.data()[10 * 21 + 10], plane.data()[10 * 21 + 10], 1e-4);  // the centre stays
  }
}

// A constant image stays constant away from the border under rotation, scaling (zoom in) and a
// small elastic field; the spatial change moves a ramp.
TEST(Augment, ResamplingInterpolatesInsideTheImage) {
  const AugmentConfig config{.flip_probability = 0.0,
                             .rotate_probability = 1.0,
                             .max_rotation_degrees = 20.0,
                             .scale_probability = 1.0,
                             .min_scale = 1.2,
                             .max_scale = 1.3,
                             .elastic_probability = 1.0,
                             .elastic_alpha = 0.5,
                             .elastic_sigma = 2.0};
  Tensor constant({1, 9, 9, 9}, 3.0f);
  augment(constant, nullptr, config, 21);
  EXPECT_NEAR(constant.data()[(4 * 9 + 4) * 9 + 4], 3.0f, 1e-5f);
  auto image = ramp({1, 9, 9, 9});
  const auto before = image;
  augment(image, nullptr, config, 21);
  EXPECT_FALSE(same_bytes(image, before));
}

TEST(Augment, NoiseHasTheDrawnSpread) {
  Tensor image({1, 64, 64}, 0.0f);
  augment(image, nullptr,
          {.flip_probability = 0.0, .noise_probability = 1.0, .max_noise_stddev = 0.5}, 8);
  double sum = 0.0, sum_sq = 0.0;
  for (const float v : image.values()) {
    sum += v;
    sum_sq += double{v} * v;
  }
  const double n = static_cast<double>(image.size());
  const double stddev = std::sqrt(sum_sq / n - (sum / n) * (sum / n));
  EXPECT_GT(stddev, 0.0);
  EXPECT_LT(stddev, 0.55);
  EXPECT_NEAR(sum / n, 0.0, 0.05);
}

TEST(Augment, SeedsDependOnRunEpochAndSample) {
  const std::set<std::uint64_t> seeds{augment_seed(1, 0, 0), augment_seed(1, 0, 1),
                                      augment_seed(1, 1, 0), augment_seed(2, 0, 0)};
  EXPECT_EQ(seeds.size(), 4u);
  EXPECT_EQ(augment_seed(1, 3, 7), augment_seed(1, 3, 7));
}

TEST(Augment, RejectsInputsThatDoNotFit) {
  auto image = ramp({1, 4, 4});
  auto label = blocks({4, 5});
  EXPECT_THROW(augment(image, &label, {}, 0), Error);
  EXPECT_THROW(augment(image, nullptr, {.flip_probability = 1.5}, 0), Error);
  auto flat = ramp({4});
  EXPECT_THROW(augment(flat, nullptr, {}, 0), Error);
  EXPECT_THROW(flip(image, nullptr, 2), Error);
}

}  // namespace
}  // namespace cajal::engine::train
