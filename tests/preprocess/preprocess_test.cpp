#include "pipeline/preprocess.h"
#include "pipeline/resample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/error.h"
#include "test_support.h"

namespace cajal::pipeline {
namespace {

// A CT-like volume: air (-1000) with a box of "body" (40 HU) and one bright voxel (bone), and
// `table`: a separate slab of 200 HU below it.
core::Volume body_volume(bool table) {
  core::Geometry g;
  g.size = {20, 16, 10};
  g.spacing = {1.5, 1.5, 2.0};
  g.origin = {-10, 20, 30};
  core::Volume v = core::make_volume(g, core::PixelType::int16, -1000.0f);
  for (std::int64_t k = 3; k < 8; ++k) {
    for (std::int64_t j = 4; j < 12; ++j) {
      for (std::int64_t i = 5; i < 15; ++i) {
        v.pixels[static_cast<std::size_t>(i + 20 * (j + 16 * k))] = 40.0f;
      }
    }
  }
  if (table) {
    for (std::int64_t i = 0; i < 20; ++i) {
      v.pixels[static_cast<std::size_t>(i + 20 * (14 + 16 * 5))] = 200.0f;
    }
  }
  return v;
}

models::RunConfig ct_run() {
  models::RunConfig run;
  run.normalization = {.kind = "ct", .clip_min = -500, .clip_max = 500, .mean = 100, .std = 50};
  return run;
}

TEST(Preprocess, CtNormalisationClipsThenScales) {
  const auto out = preprocess(body_volume(false), ct_run());
  EXPECT_FLOAT_EQ(out.image.pixels.at(0), (-500.0f - 100.0f) / 50.0f);
  EXPECT_FLOAT_EQ(out.image.at(5, 4, 3), (40.0f - 100.0f) / 50.0f);
  EXPECT_EQ(out.image.pixel_type, core::PixelType::float32);
  ASSERT_EQ(out.record.steps.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<NormalizeStep>(out.record.steps[0]));
}

// Crop, CT window and resampling are done in one pass over the input (no cropped or normalised
// copy): the pixels must be those of the three steps done one after the other.
TEST(Preprocess, CroppingNormalisingAndResamplingInOnePassGivesTheStepwisePixels) {
  core::Volume input = body_volume(true);
  std::mt19937 random(2);
  std::uniform_real_distribution<float> hu(-1200.0f, 1500.0f);
  for (std::size_t v = 0; v < input.pixels.size(); ++v) {
    if (input.pixels[v] > -1000.0f) {
      input.pixels[v] = std::round(hu(random));  // beyond the window both ways
    }
  }
  models::RunConfig run = ct_run();
  run.crop = {.kind = "body", .threshold = -500, .margin_mm = 3};
  run.target_spacing = {2.6, 0.7, 1.1};  // (D, H, W)
  const auto out = preprocess(input, run);
  ASSERT_EQ(out.record.steps.size(), 3u);
  const auto& crop = std::get<CropStep>(out.record.steps[0]);
  const auto& norm = std::get<NormalizeStep>(out.record.steps[1]);
  const auto& resample = std::get<ResampleStep>(out.record.steps[2]);
  core::Volume stepwise = core::make_volume(crop.after, input.pixel_type);
  core::copy_box(input.pixels, input.geometry.size, crop.begin, stepwise.pixels, crop.after.size,
                 {0, 0, 0}, crop.after.size);
  for (float& x : stepwise.pixels) {
    x = std::clamp(x, static_cast<float>(norm.clip_min), static_cast<float>(norm.clip_max));
    x = static_cast<float>((x - norm.mean) / norm.std);
  }
  const core::Volume expected = resample_linear(stepwise, resample.after);
  EXPECT_TRUE(core::same_grid(out.image.geometry, expected.geometry, 0));
  ASSERT_EQ(out.image.pixels.size(), expected.pixels.size());
  std::int64_t differ = 0;
  for (std::size_t v = 0; v < expected.pixels.size(); ++v) {
    differ += out.image.pixels[v] != expected.pixels[v];
  }
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(out.image.pixel_type, core::PixelType::float32);
}

TEST(Preprocess, PercentileNormalisationClipsAtTheImagesPercentilesThenZScores) {
  core::Geometry g;
  g.size = {101, 1, 1};
  core::Volume v = core::make_volume(g, core::PixelType::float32);
  for (int i = 0; i <= 100; ++i) {
    v.pixels[static_cast<std::size_t>(i)] = static_cast<float>(100 - i);
  }
  models::RunConfig run;
  run.normalization.kind = "percentile";
  run.normalization.lower_percentile = 2.5;  // numpy.percentile(range(101), 2.5) = 2.5
  run.normalization.upper_percentile = 90;
  const auto out = preprocess(v, run);
  const auto& step = std::get<NormalizeStep>(out.record.steps.at(0));
  EXPECT_DOUBLE_EQ(step.clip_min, 2.5);
  EXPECT_DOUBLE_EQ(step.clip_max, 90.0);
  double sum = 0;
  double squares = 0;
  for (const float x : out.image.pixels) {
    sum += x;
    squares += static_cast<double>(x) * x;
  }
  EXPECT_NEAR(sum / 101, 0.0, 1e-5);
  EXPECT_NEAR(squares / 101, 1.0, 1e-5);
  EXPECT_FLOAT_EQ(out.image.pixels[0], static_cast<float>((90.0 - step.mean) / step.std));
}

TEST(Preprocess, BodyCropKeepsTheLargestComponentWithItsMargin) {
  models::RunConfig run = ct_run();
  run.crop = {.kind = "body", .threshold = -500, .margin_mm = 3};  // 2 voxels in plane, 2 in k
  const auto out = preprocess(body_volume(true), run);
  ASSERT_EQ(out.record.steps.size(), 2u);
  const auto& crop = std::get<CropStep>(out.record.steps[0]);
  EXPECT_EQ(crop.begin, (core::Index3{3, 2, 1}));
  EXPECT_EQ(crop.end, (core::Index3{17, 14, 10}));  // the table at j = 14 is left out
  EXPECT_EQ(out.image.geometry.size, (core::Index3{14, 12, 9}));
  const auto corner = body_volume(true).geometry.index_to_physical({3, 2, 1});
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(out.image.geometry.origin[c], corner[c], 1e-9);
  }
}

TEST(Preprocess, PadsAVolumeSmallerThanThePatchAndRestoreRemovesThePadding) {
  models::RunConfig run = ct_run();
  run.patch_size = {16, 16, 25};  // (D, H, W): k needs 6 more, i 5 more
  const auto input = body_volume(false);
  const auto out = preprocess(input, run);
  const auto& pad = std::get<PadStep>(out.record.steps.back());
  EXPECT_EQ(pad.lower, (core::Index3{2, 0, 3}));
  EXPECT_EQ(pad.upper, (core::Index3{3, 0, 3}));
  EXPECT_EQ(out.image.geometry.size, (core::Index3{25, 16, 16}));
  EXPECT_FLOAT_EQ(out.image.at(0, 0, 0), (-500.0f - 100.0f) / 50.0f);
  core::Volume labels = core::make_volume(out.image.geometry, core::PixelType::uint8);
  labels.pixels[static_cast<std::size_t>(1 + 25 * (0 + 16 * 3))] = 1;  // padding: dropped
  labels.pixels[static_cast<std::size_t>(3 + 25 * (0 + 16 * 3))] = 2;  // input voxel (1, 0, 0)
  const auto restored = restore_labels(labels, out.record);
  EXPECT_EQ(restored.geometry.size, input.geometry.size);
  EXPECT_EQ(restored.at(1, 0, 0), 2.0f);
  EXPECT_EQ(std::count(restored.pixels.begin(), restored.pixels.end(), 1.0f), 0);
  EXPECT_EQ(restored.pixel_type, core::PixelType::uint8);
  labels.pixels[static_cast<std::size_t>(3 + 25 * (0 + 16 * 3))] = 300;  // beyond uint8
  const auto wide = restore_labels(labels, out.record);
  EXPECT_EQ(wide.at(1, 0, 0), 300.0f);
  EXPECT_EQ(wide.pixel_type, core::PixelType::uint16);
}

// Labels on the input grid, carried to the preprocessed grid by physical position (each output
// centre is an input centre when no resampling happens), then restored: the same labels wherever
// the crop kept the voxel.
TEST(Preprocess, LabelRoundTripIsIdentityWhenSpacingIsAlreadyTheTarget) {
  const auto input = body_volume(true);
  models::RunConfig run = ct_run();
  run.orientation = "RAS";
  run.target_spacing = {2.0, 1.5, 1.5};
  run.crop = {.kind = "body", .threshold = -500, .margin_mm = 3};
  run.patch_size = {12, 8, 8};
  const auto out = preprocess(input, run);
  core::Volume truth = core::make_volume(input.geometry, core::PixelType::uint8);
  for (std::size_t v = 0; v < truth.pixels.size(); ++v) {
    truth.pixels[v] = input.pixels[v] == 40.0f ? static_cast<float>(1 + v % 3) : 0.0f;
  }
  core::Volume labels = core::make_volume(out.image.geometry, core::PixelType::uint8);
  const auto& g = labels.geometry;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const auto p = g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        const auto at = input.geometry.physical_to_index(p);
        bool inside = true;
        for (int c = 0; c < 3; ++c) {
          inside =
              inside && at[c] > -0.5 && at[c] < static_cast<double>(input.geometry.size[c]) - 0.5;
        }
        if (inside) {
          labels.pixels[static_cast<std::size_t>(i + g.size[0] * (j + g.size[1] * k))] =
              testing::value_at_point(truth, p);
        }
      }
    }
  }
  const auto restored = restore_labels(labels, out.record);
  EXPECT_EQ(restored.pixel_type, core::PixelType::uint8);
  EXPECT_TRUE(core::same_grid(restored.geometry, input.geometry, 0));
  EXPECT_EQ(restored.pixels, truth.pixels);
}

// Through resampling, each input voxel takes the label of the model-grid voxel whose centre is
// nearest to its own, computed here from physical positions alone.
// Restoring through a resampling gives each input voxel the label of largest trilinear weight
// among the 8 model voxels around it (ties: the lower label); the model voxels are found here
// from physical coordinates, independently of the resampler's index arithmetic.
// With `crop`, a body crop before the resampling: voxels outside it restore as 0 (the restore
// then resamples straight into the uncropped grid).
void expect_largest_linear_weight(bool crop) {
  const auto input = body_volume(false);  // 1.5 x 1.5 x 2 mm
  models::RunConfig run = ct_run();
  run.orientation = "RAS";
  run.target_spacing = {2.6, 0.7, 1.1};  // (D, H, W)
  if (crop) {
    run.crop = {.kind = "body", .threshold = -500, .margin_mm = 1.5};
  }
  const auto out = preprocess(input, run);
  ASSERT_TRUE(std::holds_alternative<ResampleStep>(out.record.steps.back()));
  const CropStep* cropped = nullptr;
  for (const auto& step : out.record.steps) {
    cropped = std::holds_alternative<CropStep>(step) ? &std::get<CropStep>(step) : cropped;
  }
  ASSERT_EQ(cropped != nullptr, crop);
  const auto& grid = out.image.geometry;
  EXPECT_NEAR(grid.spacing[0], 1.1, 1e-12);
  EXPECT_NEAR(grid.spacing[2], 2.6, 1e-12);
  core::Volume labels = core::make_volume(grid, core::PixelType::uint8);
  for (std::size_t v = 0; v < labels.pixels.size(); ++v) {
    labels.pixels[v] = static_cast<float>((v / 5) % 7);
  }
  const auto restored = restore_labels(labels, out.record);
  const auto& g = input.geometry;
  std::size_t n = 0;
  std::int64_t wrong = 0;
  std::int64_t mixed = 0;
  std::int64_t outside = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        const auto point = g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
        if (cropped != nullptr) {
          const auto in_crop = cropped->after.physical_to_index(point);
          bool inside = true;
          for (int c = 0; c < 3; ++c) {
            const auto nearest = static_cast<std::int64_t>(std::floor(in_crop[c] + 0.5));
            inside = inside && nearest >= 0 && nearest < cropped->after.size[c];
          }
          if (!inside) {
            outside += 1;
            wrong += restored.pixels[n] != 0.0f;
            continue;
          }
        }
        const auto at = grid.physical_to_index(point);
        std::array<std::int64_t, 3> lo{};
        std::array<double, 3> w{};
        for (int c = 0; c < 3; ++c) {
          const double x = std::clamp(at[c], 0.0, static_cast<double>(grid.size[c] - 1));
          lo[c] = static_cast<std::int64_t>(std::floor(x));
          w[c] = x - static_cast<double>(lo[c]);
        }
        std::map<float, double> weight;
        for (int corner = 0; corner < 8; ++corner) {
          core::Index3 at_corner{};
          double cw = 1;
          for (int c = 0; c < 3; ++c) {
            const bool up = ((corner >> c) & 1) != 0;
            at_corner[c] = std::min(lo[c] + (up ? 1 : 0), grid.size[c] - 1);
            cw *= up ? w[c] : 1 - w[c];
          }
          weight[labels.at(at_corner[0], at_corner[1], at_corner[2])] += cw;
        }
        float best = -1;
        double best_weight = -1;
        for (const auto& [label, sum] : weight) {  // ascending labels: ties keep the lower
          if (sum > best_weight + 1e-6) {
            best = label;
            best_weight = sum;
          }
        }
        mixed += weight.size() > 1 ? 1 : 0;
        wrong += restored.pixels[n] != best;
      }
    }
  }
  EXPECT_GT(mixed, crop ? 500 : 1000);  // the check sees voxels between different labels
  EXPECT_EQ(outside > 0, crop);
  EXPECT_EQ(wrong, 0);
}

TEST(Preprocess, RestoreThroughResamplingTakesTheLabelOfLargestLinearWeight) {
  expect_largest_linear_weight(false);
}

TEST(Preprocess, RestoreThroughACropAndResamplingTakesTheSameLabelsInsideTheCrop) {
  expect_largest_linear_weight(true);
}

// A ball on a 3 mm model grid restored onto a 1 mm grid: the linear-weight rule follows its
// surface better than nearest neighbour does (fewer voxels differ from the true 1 mm ball).
TEST(Preprocess, LinearLabelRestoreFollowsEdgesBetterThanNearest) {
  core::Geometry fine;
  fine.size = {60, 60, 60};
  fine.spacing = {1, 1, 1};
  fine.origin = {-29.5, -29.5, -29.5};
  const core::Geometry coarse = resampled_grid(fine, {3, 3, 3});
  auto ball = [](const core::Geometry& g) {
    core::Volume v = core::make_volume(g, core::PixelType::uint8);
    std::size_t n = 0;
    for (std::int64_t k = 0; k < g.size[2]; ++k) {
      for (std::int64_t j = 0; j < g.size[1]; ++j) {
        for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
          const auto p = g.index_to_physical(
              {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)});
          v.pixels[n] = p[0] * p[0] + p[1] * p[1] + p[2] * p[2] < 14.2 * 14.2 ? 1.0f : 0.0f;
        }
      }
    }
    return v;
  };
  const core::Volume truth = ball(fine);
  const core::Volume model = ball(coarse);
  auto differ = [&](const core::Volume& v) {
    std::int64_t d = 0;
    for (std::size_t n = 0; n < v.pixels.size(); ++n) {
      d += v.pixels[n] != truth.pixels[n] ? 1 : 0;
    }
    return d;
  };
  const auto linear = differ(resample_labels_linear(model, fine));
  const auto nearest = differ(resample_nearest(model, fine));
  EXPECT_LT(static_cast<double>(linear), 0.8 * static_cast<double>(nearest))
      << "linear " << linear << ", nearest " << nearest;
}

// The label rule's naive twin: each output voxel's eight corners from its continuous index on
// the input grid (clamped), each label's summed trilinear weight, the largest, ties to the lower
// label. The grids below give weights in eighths, so sums in any order are exact.
std::vector<float> labels_by_weight(const core::Volume& volume, const core::Geometry& grid) {
  std::vector<float> out;
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      for (std::int64_t i = 0; i < grid.size[0]; ++i) {
        const core::Vec3 x = volume.geometry.physical_to_index(grid.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)}));
        std::array<std::int64_t, 3> lo{};
        std::array<std::int64_t, 3> hi{};
        std::array<double, 3> w{};
        for (int c = 0; c < 3; ++c) {
          const auto last = static_cast<double>(volume.geometry.size[c] - 1);
          const double t = std::clamp(x[c], 0.0, last);
          lo[c] = static_cast<std::int64_t>(std::floor(t));
          hi[c] = std::min(lo[c] + 1, volume.geometry.size[c] - 1);
          w[c] = t - static_cast<double>(lo[c]);
        }
        std::map<float, double> sum;
        for (int corner = 0; corner < 8; ++corner) {
          double weight = 1;
          core::Index3 at{};
          for (int c = 0; c < 3; ++c) {
            const bool up = ((corner >> c) & 1) != 0;
            weight *= up ? w[c] : 1 - w[c];
            at[c] = up ? hi[c] : lo[c];
          }
          sum[volume.at(at[0], at[1], at[2])] += weight;
        }
        float best = 0;
        double best_sum = -1;
        for (const auto& [label, s] : sum) {  // lower labels first: a tie keeps the lower
          if (s > best_sum) {
            best = label;
            best_sum = s;
          }
        }
        out.push_back(best);
      }
    }
  }
  return out;
}

// Blocks of labels 0-3 (runs that agree) with single voxels of other labels strewn in.
core::Volume blocky_labels(const core::Geometry& g, unsigned seed) {
  core::Volume v = core::make_volume(g, core::PixelType::uint8);
  std::mt19937 rng(seed);
  std::size_t n = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++n) {
        v.pixels[n] = static_cast<float>((i / 4 + j / 3 + k / 2) % 4);
        if (rng() % 9 == 0) {
          v.pixels[n] = static_cast<float>(rng() % 4);
        }
      }
    }
  }
  return v;
}

TEST(Preprocess, LinearLabelRestoreMatchesItsNaiveTwin) {
  core::Geometry coarse;
  coarse.size = {13, 9, 7};
  coarse.spacing = {2, 2, 2.5};
  coarse.origin = {-12, 7, 30};
  // Finer by 2 and 4, coarser by 2 (ties of one half), and the same slices (weight 0).
  for (const core::Vec3& spacing : {core::Vec3{1, 0.5, 2.5}, core::Vec3{0.5, 4, 1.25},
                                    core::Vec3{4, 1, 2.5}, core::Vec3{1, 1, 5}}) {
    for (unsigned seed = 1; seed <= 3; ++seed) {
      const core::Volume labels = blocky_labels(coarse, seed);
      const core::Geometry fine = resampled_grid(coarse, spacing);
      const std::vector<float> expected = labels_by_weight(labels, fine);
      EXPECT_EQ(resample_labels_linear(labels, fine).pixels, expected)
          << "spacing " << spacing[0] << " " << spacing[1] << " " << spacing[2] << ", seed "
          << seed;
      // Into a larger grid at an offset: the box takes the same labels, the rest is untouched.
      const core::Index3 outer{fine.size[0] + 3, fine.size[1] + 1, fine.size[2] + 2};
      std::vector<float> into(static_cast<std::size_t>(outer[0] * outer[1] * outer[2]), 9.0f);
      resample_labels_linear_into(labels, fine, into, outer, {2, 1, 0});
      std::size_t n = 0;
      std::int64_t wrong = 0;
      for (std::int64_t k = 0; k < outer[2]; ++k) {
        for (std::int64_t j = 0; j < outer[1]; ++j) {
          for (std::int64_t i = 0; i < outer[0]; ++i, ++n) {
            const bool inside = i >= 2 && i < 2 + fine.size[0] && j >= 1 && j < 1 + fine.size[1] &&
                                k < fine.size[2];
            const float want = inside ? expected[static_cast<std::size_t>(
                                            (i - 2) + fine.size[0] * ((j - 1) + fine.size[1] * k))]
                                      : 9.0f;
            wrong += into[n] != want ? 1 : 0;
          }
        }
      }
      EXPECT_EQ(wrong, 0) << "spacing " << spacing[0] << " " << spacing[1] << " " << spacing[2];
    }
  }
}

TEST(Preprocess, RestoreRejectsLabelsOnAnotherGrid) {
  models::RunConfig run = ct_run();
  run.orientation = "RAS";
  const auto out = preprocess(body_volume(false), run);
  core::Volume labels = core::make_volume(body_volume(false).geometry, core::PixelType::uint8);
  EXPECT_THROW(restore_labels(labels, out.record), Error);  // the LPS grid, not the RAS one
}

TEST(Preprocess, RecordListsEveryStepAsJson) {
  models::RunConfig run = ct_run();
  run.orientation = "RAS";
  run.target_spacing = {1.0, 1.0, 1.0};
  run.crop = {.kind = "body", .threshold = -500, .margin_mm = 3};
  const auto json = to_json(preprocess(body_volume(true), run).record);
  std::vector<std::string> names;
  for (const auto& step : json.at("steps")) {
    names.push_back(step.at("step"));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"reorient", "crop", "normalize", "resample"}));
  EXPECT_EQ(json.at("output").at("orientation"), "RAS");
}

}  // namespace
}  // namespace cajal::pipeline
