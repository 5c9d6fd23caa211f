#include "pipeline/postprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>
#include <random>

namespace cajal::pipeline {
namespace {

core::Volume empty_labels(core::Index3 size, double spacing = 1.0) {
  core::Geometry g;
  g.size = size;
  g.spacing = {spacing, spacing, spacing};
  return core::make_volume(g, core::PixelType::uint8);
}

void set(core::Volume& v, std::int64_t i, std::int64_t j, std::int64_t k, float value) {
  v.pixels[static_cast<std::size_t>(i + v.geometry.size[0] * (j + v.geometry.size[1] * k))] = value;
}

void fill_box(core::Volume& v, core::Index3 begin, core::Index3 end, float value) {
  for (std::int64_t k = begin[2]; k < end[2]; ++k) {
    for (std::int64_t j = begin[1]; j < end[1]; ++j) {
      for (std::int64_t i = begin[0]; i < end[0]; ++i) {
        set(v, i, j, k, value);
      }
    }
  }
}

std::int64_t count(const core::Volume& v, float value) {
  return std::count(v.pixels.begin(), v.pixels.end(), value);
}

models::RunConfig rules(models::LabelPostprocessing rule) {
  models::RunConfig run;
  run.labels = {"background", "liver", "kidney"};
  run.postprocessing = {std::move(rule)};
  return run;
}

TEST(Components, CornerNeighboursJoinIn26ConnectivityButNotIn6) {
  std::vector<std::uint8_t> mask(27, 0);
  mask[0] = 1;   // (0, 0, 0)
  mask[13] = 1;  // (1, 1, 1): shares only a corner with (0, 0, 0)
  mask[26] = 1;  // (2, 2, 2)
  const auto full = label_components(mask, {3, 3, 3}, Connectivity::full26);
  EXPECT_EQ(full.sizes, (std::vector<std::int64_t>{3}));
  const auto face = label_components(mask, {3, 3, 3}, Connectivity::face6);
  EXPECT_EQ(face.sizes, (std::vector<std::int64_t>{1, 1, 1}));
  EXPECT_EQ(face.touches_border, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(face.id[13], 2);
}

// The naive twin of label_components: a flood fill from each unlabelled mask voxel in raster
// order, trying all 6 or 26 neighbours of every voxel (what label_components did before runs).
Components flood_fill_components(const std::vector<std::uint8_t>& mask, const core::Index3& size,
                                 Connectivity connectivity) {
  Components result;
  result.id.assign(mask.size(), 0);
  std::vector<std::int64_t> stack;
  const auto inside = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    return i >= 0 && j >= 0 && k >= 0 && i < size[0] && j < size[1] && k < size[2];
  };
  for (std::int64_t seed = 0; seed < static_cast<std::int64_t>(mask.size()); ++seed) {
    if (mask[static_cast<std::size_t>(seed)] == 0 || result.id[static_cast<std::size_t>(seed)]) {
      continue;
    }
    const auto c = static_cast<std::int32_t>(result.sizes.size() + 1);
    result.sizes.push_back(0);
    result.touches_border.push_back(false);
    result.id[static_cast<std::size_t>(seed)] = c;
    stack.push_back(seed);
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      ++result.sizes.back();
      const std::int64_t i = v % size[0];
      const std::int64_t j = (v / size[0]) % size[1];
      const std::int64_t k = v / (size[0] * size[1]);
      for (int a = 0; a < 3; ++a) {
        const std::int64_t index = a == 0 ? i : a == 1 ? j : k;
        if (index == 0 || index == size[a] - 1) {
          result.touches_border.back() = true;
        }
      }
      for (int dk = -1; dk <= 1; ++dk) {
        for (int dj = -1; dj <= 1; ++dj) {
          for (int di = -1; di <= 1; ++di) {
            const int steps = std::abs(di) + std::abs(dj) + std::abs(dk);
            if (steps == 0 || (connectivity == Connectivity::face6 && steps > 1) ||
                !inside(i + di, j + dj, k + dk)) {
              continue;
            }
            const auto n =
                static_cast<std::size_t>(i + di + size[0] * (j + dj + size[1] * (k + dk)));
            if (mask[n] != 0 && result.id[n] == 0) {
              result.id[n] = c;
              stack.push_back(static_cast<std::int64_t>(n));
            }
          }
        }
      }
    }
  }
  return result;
}

TEST(Components, RunsGiveTheSameComponentsAsAFloodFillOnRandomMasks) {
  std::mt19937 random(11);
  int checked = 0;
  for (const core::Index3 size :
       {core::Index3{13, 9, 7}, core::Index3{1, 8, 9}, core::Index3{10, 1, 6},
        core::Index3{7, 6, 1}, core::Index3{33, 17, 5}}) {
    for (int trial = 0; trial < 24; ++trial) {
      // From specks to a nearly full block: many small components, long runs, one big one.
      std::bernoulli_distribution on(0.05 + 0.9 * (trial % 8) / 7.0);
      std::vector<std::uint8_t> mask(static_cast<std::size_t>(size[0] * size[1] * size[2]));
      for (auto& m : mask) {
        m = on(random) ? (trial % 2 ? 1 : 255) : 0;
      }
      for (const Connectivity connectivity : {Connectivity::full26, Connectivity::face6}) {
        const Components expected = flood_fill_components(mask, size, connectivity);
        const Components got = label_components(mask, size, connectivity);
        ASSERT_EQ(got.sizes, expected.sizes) << trial;
        ASSERT_EQ(got.touches_border, expected.touches_border) << trial;
        ASSERT_EQ(got.id, expected.id) << trial;
        checked += expected.sizes.size() > 3;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(Components, RunsLongerThanAWordGiveTheSameComponentsAsAFloodFill) {
  // Rows of alternating runs of 1 to 30 voxels, so that runs begin and end at every offset of
  // the eight-byte words the run scan skips by (nonzero values 1, 2 or 255).
  std::mt19937 random(5);
  std::uniform_int_distribution<int> length(1, 30);
  std::uniform_int_distribution<int> value(0, 2);
  const core::Index3 size{70, 6, 5};
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(size[0] * size[1] * size[2]));
    for (std::size_t row = 0; row < mask.size(); row += static_cast<std::size_t>(size[0])) {
      bool on = trial % 2 == 1;
      for (std::int64_t i = 0; i < size[0]; on = !on) {
        const std::int64_t end = std::min(size[0], i + length(random));
        const std::uint8_t v = on ? std::array<std::uint8_t, 3>{1, 2, 255}[value(random)] : 0;
        for (; i < end; ++i) {
          mask[row + static_cast<std::size_t>(i)] = v;
        }
      }
    }
    for (const Connectivity connectivity : {Connectivity::full26, Connectivity::face6}) {
      const Components expected = flood_fill_components(mask, size, connectivity);
      const Components got = label_components(mask, size, connectivity);
      ASSERT_EQ(got.sizes, expected.sizes) << trial;
      ASSERT_EQ(got.id, expected.id) << trial;
    }
  }
}

// What the body crop did before largest_component_box: label every component, take the first
// of the largest, scan the ids for its box.
std::optional<ComponentBox> largest_box_from_ids(const std::vector<std::uint8_t>& mask,
                                                 const core::Index3& size,
                                                 Connectivity connectivity) {
  const auto components = label_components(mask, size, connectivity);
  if (components.sizes.empty()) {
    return std::nullopt;
  }
  const auto keep =
      static_cast<std::int32_t>(std::max_element(components.sizes.begin(), components.sizes.end()) -
                                components.sizes.begin() + 1);
  ComponentBox box{0, size, {-1, -1, -1}};
  std::size_t v = 0;
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i, ++v) {
        if (components.id[v] == keep) {
          ++box.voxels;
          const core::Index3 index{i, j, k};
          for (int c = 0; c < 3; ++c) {
            box.low[c] = std::min(box.low[c], index[c]);
            box.high[c] = std::max(box.high[c], index[c]);
          }
        }
      }
    }
  }
  return box;
}

TEST(Components, LargestBoxWithoutIdsMatchesTheLabelledComponentsOnRandomMasks) {
  std::mt19937 random(7);
  const core::Index3 size{11, 9, 7};
  int multi_component = 0;
  for (int trial = 0; trial < 60; ++trial) {
    // Sparse masks break into many pieces (ties of size included), dense ones into few.
    std::bernoulli_distribution on(0.1 + 0.5 * (trial % 6) / 5.0);
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(size[0] * size[1] * size[2]));
    for (auto& m : mask) {
      m = on(random) ? 1 : 0;
    }
    for (const Connectivity connectivity : {Connectivity::full26, Connectivity::face6}) {
      const auto expected = largest_box_from_ids(mask, size, connectivity);
      multi_component += label_components(mask, size, connectivity).sizes.size() > 1;
      std::vector<std::uint8_t> marks = mask;
      const auto box = largest_component_box(marks, size, connectivity);
      ASSERT_EQ(box.has_value(), expected.has_value()) << trial;
      if (expected) {
        EXPECT_EQ(box->voxels, expected->voxels) << trial;
        EXPECT_EQ(box->low, expected->low) << trial;
        EXPECT_EQ(box->high, expected->high) << trial;
      }
    }
  }
  EXPECT_GT(multi_component, 60);
  std::vector<std::uint8_t> none(8, 0);
  EXPECT_FALSE(largest_component_box(none, {2, 2, 2}, Connectivity::full26));
}

TEST(Components, LargestBoxAboveAThresholdIsTheLargestBoxOfTheThresholdedMask) {
  std::mt19937 random(9);
  std::uniform_int_distribution<int> value(-3, 3);
  const core::Index3 size{21, 8, 6};
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<float> pixels(static_cast<std::size_t>(size[0] * size[1] * size[2]));
    for (auto& p : pixels) {
      p = static_cast<float>(value(random));
    }
    const float threshold = static_cast<float>(trial % 5 - 2);  // pixels equal to it are out
    std::vector<std::uint8_t> mask(pixels.size());
    for (std::size_t v = 0; v < mask.size(); ++v) {
      mask[v] = pixels[v] > threshold ? 1 : 0;
    }
    for (const Connectivity connectivity : {Connectivity::full26, Connectivity::face6}) {
      const auto expected = largest_component_box(mask, size, connectivity);
      const auto box = largest_component_box_above(pixels, threshold, size, connectivity);
      ASSERT_EQ(box.has_value(), expected.has_value()) << trial;
      if (expected) {
        EXPECT_EQ(box->voxels, expected->voxels) << trial;
        EXPECT_EQ(box->low, expected->low) << trial;
        EXPECT_EQ(box->high, expected->high) << trial;
      }
    }
  }
  EXPECT_FALSE(largest_component_box_above(std::vector<float>(8, 1.0f), 1.0f, {2, 2, 2},
                                           Connectivity::full26));
}

TEST(Components, LargestBoxTakesTheFirstOfEquallyLargeComponents) {
  std::vector<std::uint8_t> mask(5 * 1 * 1, 0);
  mask[0] = 1;  // (0, 0, 0)
  mask[3] = 1;  // (3, 0, 0): as large, found later
  const auto box = largest_component_box(mask, {5, 1, 1}, Connectivity::full26);
  ASSERT_TRUE(box);
  EXPECT_EQ(box->voxels, 1);
  EXPECT_EQ(box->low, (core::Index3{0, 0, 0}));
}

TEST(Postprocess, KeepsTheLargestComponentOfALabelOnly) {
  auto labels = empty_labels({12, 10, 8});
  fill_box(labels, {1, 1, 1}, {5, 5, 5}, 1);   // 64 voxels
  fill_box(labels, {8, 1, 1}, {10, 3, 3}, 1);  // 8 voxels: removed
  fill_box(labels, {8, 6, 4}, {10, 8, 6}, 2);  // another label: untouched
  const auto report =
      postprocess_labels(labels, rules({.label = "liver", .keep_largest_component = true}));
  EXPECT_EQ(count(labels, 1), 64);
  EXPECT_EQ(count(labels, 2), 8);
  EXPECT_EQ(report.details.at("liver").at("components"), 2);
  EXPECT_EQ(report.details.at("liver").at("removed_voxels"), 8);
}

TEST(Postprocess, FillsEnclosedHolesButNotOpenCavitiesNorOtherLabels) {
  auto labels = empty_labels({12, 12, 12});
  fill_box(labels, {1, 1, 1}, {8, 8, 8}, 1);
  fill_box(labels, {3, 3, 3}, {6, 6, 6}, 0);   // enclosed hole: 27 voxels
  set(labels, 4, 4, 4, 2);                     // another label inside it: kept
  fill_box(labels, {9, 1, 1}, {12, 4, 4}, 1);  // a cup open to the border along i
  set(labels, 10, 2, 2, 0);
  set(labels, 11, 2, 2, 0);
  const auto report = postprocess_labels(labels, rules({.label = "liver", .fill_holes = true}));
  EXPECT_EQ(labels.at(3, 3, 3), 1.0f);
  EXPECT_EQ(labels.at(4, 4, 4), 2.0f);
  EXPECT_EQ(labels.at(10, 2, 2), 0.0f);
  EXPECT_EQ(report.details.at("liver").at("filled_voxels"), 26);
}

TEST(Postprocess, DiagonalGapDoesNotOpenAHole) {
  // A hole whose wall has a voxel missing only along a diagonal stays a hole: the background is
  // 6-connected, so it cannot leave through a corner the 26-connected foreground closes.
  auto labels = empty_labels({5, 5, 5});
  fill_box(labels, {0, 0, 0}, {5, 5, 5}, 1);
  set(labels, 2, 2, 2, 0);
  fill_box(labels, {3, 3, 3}, {5, 5, 5}, 0);  // open to the border; meets the hole at a corner
  postprocess_labels(labels, rules({.label = "liver", .fill_holes = true}));
  EXPECT_EQ(labels.at(2, 2, 2), 1.0f);
  EXPECT_EQ(labels.at(4, 4, 4), 0.0f);
}

TEST(Postprocess, DropsComponentsBelowTheMinimumVolumeInCubicMillimetres) {
  auto labels = empty_labels({10, 10, 10}, 2.0);  // 8 mm3 per voxel
  fill_box(labels, {0, 0, 0}, {3, 1, 1}, 2);      // 24 mm3: dropped
  fill_box(labels, {5, 5, 5}, {9, 6, 6}, 2);      // 32 mm3: kept
  fill_box(labels, {0, 8, 8}, {1, 9, 9}, 1);      // liver, no rule
  postprocess_labels(labels, rules({.label = "kidney", .min_component_mm3 = 30}));
  EXPECT_EQ(count(labels, 2), 4);
  EXPECT_EQ(labels.at(5, 5, 5), 2.0f);
  EXPECT_EQ(count(labels, 1), 1);
}

// The rules applied on the whole grid by flood fills: the postprocessing's naive twin.
void postprocess_by_flood_fill(core::Volume& labels, const models::RunConfig& run) {
  const core::Index3& size = labels.geometry.size;
  for (std::size_t value = 1; value < run.labels.size(); ++value) {
    const auto rule = std::find_if(run.postprocessing.begin(), run.postprocessing.end(),
                                   [&](const auto& r) { return r.label == run.labels[value]; });
    if (rule == run.postprocessing.end()) {
      continue;
    }
    const auto v = static_cast<float>(value);
    std::vector<std::uint8_t> mask(labels.pixels.size());
    for (std::size_t n = 0; n < mask.size(); ++n) {
      mask[n] = labels.pixels[n] == v;
    }
    const Components parts = flood_fill_components(mask, size, Connectivity::full26);
    std::size_t largest = 0;  // component number, 0 for none
    for (std::size_t c = 1; c <= parts.sizes.size(); ++c) {
      const double mm3 = static_cast<double>(parts.sizes[c - 1]);  // unit spacing
      if (mm3 >= rule->min_component_mm3 &&
          (largest == 0 || parts.sizes[c - 1] > parts.sizes[largest - 1])) {
        largest = c;
      }
    }
    for (std::size_t n = 0; n < mask.size(); ++n) {
      const auto c = static_cast<std::size_t>(parts.id[n]);
      const bool small = c > 0 && static_cast<double>(parts.sizes[c - 1]) < rule->min_component_mm3;
      if (c > 0 && (small || (rule->keep_largest_component && c != largest))) {
        labels.pixels[n] = 0.0f;
      }
    }
    if (rule->fill_holes) {
      for (std::size_t n = 0; n < mask.size(); ++n) {
        mask[n] = labels.pixels[n] != v;
      }
      const Components background = flood_fill_components(mask, size, Connectivity::face6);
      for (std::size_t n = 0; n < mask.size(); ++n) {
        const auto c = static_cast<std::size_t>(background.id[n]);
        if (c > 0 && !background.touches_border[c - 1] && labels.pixels[n] == 0.0f) {
          labels.pixels[n] = v;
        }
      }
    }
  }
}

TEST(Postprocess, RulesInEachLabelsBoxGiveWhatTheyGiveOnTheWholeGrid) {
  // Random boxes of three labels, some at the grid's border, with holes and specks; every rule
  // on each, compared with flood fills over the whole grid.
  std::mt19937 random(3);
  const core::Index3 size{17, 14, 12};
  std::uniform_int_distribution<std::int64_t> corner(0, 16);
  std::uniform_int_distribution<int> label(0, 3);
  int filled = 0;  // rules that filled holes
  int removed = 0;
  for (int trial = 0; trial < 40; ++trial) {
    auto labels = empty_labels(size);
    for (int b = 0; b < 10; ++b) {
      core::Index3 begin{};
      core::Index3 end{};
      for (int c = 0; c < 3; ++c) {
        const std::int64_t x = std::min(corner(random), size[c] - 1);
        const std::int64_t y = std::min(corner(random), size[c] - 1);
        begin[c] = std::min(x, y);
        end[c] = std::max(x, y) + 1;
      }
      fill_box(labels, begin, end, static_cast<float>(label(random)));
    }
    // A hollow box, its cavity a hole unless another box opened it or it lies at the border.
    const core::Index3 at{corner(random) % 12, corner(random) % 9, corner(random) % 7};
    const float hollow = static_cast<float>(1 + trial % 3);
    fill_box(labels, at, {at[0] + 5, at[1] + 5, at[2] + 5}, hollow);
    fill_box(labels, {at[0] + 1, at[1] + 1, at[2] + 1}, {at[0] + 4, at[1] + 4, at[2] + 4}, 0.0f);
    models::RunConfig run;
    run.labels = {"background", "a", "b", "c"};
    run.postprocessing = {{.label = "a", .keep_largest_component = true, .fill_holes = true},
                          {.label = "b", .fill_holes = true, .min_component_mm3 = 5},
                          {.label = "c",
                           .keep_largest_component = trial % 2 == 0,
                           .fill_holes = trial % 3 == 0,
                           .min_component_mm3 = 2}};
    core::Volume expected = labels;
    postprocess_by_flood_fill(expected, run);
    const PostprocessReport report = postprocess_labels(labels, run);
    ASSERT_EQ(labels.pixels, expected.pixels) << trial;
    for (const auto& [name, detail] : report.details.items()) {
      filled += detail["filled_voxels"].get<std::int64_t>() > 0;
      removed += detail["removed_voxels"].get<std::int64_t>() > 0;
    }
  }
  EXPECT_GT(filled, 10);
  EXPECT_GT(removed, 10);
}

}  // namespace
}  // namespace cajal::pipeline
