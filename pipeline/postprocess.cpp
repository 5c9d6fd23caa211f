#include "pipeline/postprocess.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

struct Offset {
  int di, dj, dk;
};

std::vector<Offset> neighbour_offsets(Connectivity connectivity) {
  std::vector<Offset> offsets;
  for (int dk = -1; dk <= 1; ++dk) {
    for (int dj = -1; dj <= 1; ++dj) {
      for (int di = -1; di <= 1; ++di) {
        const int steps = std::abs(di) + std::abs(dj) + std::abs(dk);
        if (steps == 0 || (connectivity == Connectivity::face6 && steps > 1)) {
          continue;
        }
        offsets.push_back({di, dj, dk});
      }
    }
  }
  return offsets;
}

// Removes (sets to 0) every voxel of `labels` equal to `value` in a component not kept.
std::int64_t remove_components(core::Volume& labels, const Components& components,
                               const std::vector<bool>& keep) {
  std::int64_t removed = 0;
  for (std::size_t v = 0; v < components.id.size(); ++v) {
    const auto c = components.id[v];
    if (c > 0 && !keep[static_cast<std::size_t>(c - 1)]) {
      labels.pixels[v] = 0.0f;
      ++removed;
    }
  }
  return removed;
}

std::vector<std::uint8_t> mask_of(const core::Volume& labels, float value, bool equal) {
  std::vector<std::uint8_t> mask(labels.pixels.size());
  for (std::size_t v = 0; v < mask.size(); ++v) {
    mask[v] = (labels.pixels[v] == value) == equal ? 1 : 0;
  }
  return mask;
}

nlohmann::json apply_rule(core::Volume& labels, float value,
                          const models::LabelPostprocessing& rule) {
  const auto& g = labels.geometry;
  const double voxel_mm3 = g.spacing[0] * g.spacing[1] * g.spacing[2];
  nlohmann::json detail = {{"label_value", static_cast<int>(value)},
                           {"keep_largest_component", rule.keep_largest_component},
                           {"fill_holes", rule.fill_holes},
                           {"min_component_mm3", rule.min_component_mm3}};
  const auto components =
      label_components(mask_of(labels, value, true), g.size, Connectivity::full26);
  const std::size_t count = components.sizes.size();
  std::vector<bool> keep(count, true);
  for (std::size_t c = 0; c < count; ++c) {
    if (static_cast<double>(components.sizes[c]) * voxel_mm3 < rule.min_component_mm3) {
      keep[c] = false;
    }
  }
  if (rule.keep_largest_component) {
    std::size_t largest = count;
    for (std::size_t c = 0; c < count; ++c) {
      if (keep[c] && (largest == count || components.sizes[c] > components.sizes[largest])) {
        largest = c;
      }
    }
    for (std::size_t c = 0; c < count; ++c) {
      keep[c] = c == largest;
    }
  }
  const auto removed_components = std::count(keep.begin(), keep.end(), false);
  detail["components"] = count;
  detail["removed_components"] = removed_components;
  detail["removed_voxels"] =
      removed_components > 0 ? remove_components(labels, components, keep) : 0;
  std::int64_t filled = 0;
  if (rule.fill_holes) {
    const auto background =
        label_components(mask_of(labels, value, false), g.size, Connectivity::face6);
    for (std::size_t v = 0; v < background.id.size(); ++v) {
      const auto c = background.id[v];
      if (c > 0 && !background.touches_border[static_cast<std::size_t>(c - 1)] &&
          labels.pixels[v] == 0.0f) {
        labels.pixels[v] = value;
        ++filled;
      }
    }
  }
  detail["filled_voxels"] = filled;
  return detail;
}

}  // namespace

Components label_components(const std::vector<std::uint8_t>& mask, const core::Index3& size,
                            Connectivity connectivity) {
  const std::int64_t count = size[0] * size[1] * size[2];
  CAJAL_CHECK(static_cast<std::int64_t>(mask.size()) == count)
      << "mask of " << mask.size() << " voxels for a grid of " << count;
  const auto offsets = neighbour_offsets(connectivity);
  Components result;
  result.id.assign(mask.size(), 0);
  std::vector<std::int64_t> stack;
  for (std::int64_t seed = 0; seed < count; ++seed) {
    if (mask[static_cast<std::size_t>(seed)] == 0 ||
        result.id[static_cast<std::size_t>(seed)] != 0) {
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
      if (i == 0 || j == 0 || k == 0 || i == size[0] - 1 || j == size[1] - 1 || k == size[2] - 1) {
        result.touches_border.back() = true;
      }
      for (const auto& o : offsets) {
        const std::int64_t ni = i + o.di;
        const std::int64_t nj = j + o.dj;
        const std::int64_t nk = k + o.dk;
        if (ni < 0 || nj < 0 || nk < 0 || ni >= size[0] || nj >= size[1] || nk >= size[2]) {
          continue;
        }
        const auto n = static_cast<std::size_t>(ni + size[0] * (nj + size[1] * nk));
        if (mask[n] != 0 && result.id[n] == 0) {
          result.id[n] = c;
          stack.push_back(static_cast<std::int64_t>(n));
        }
      }
    }
  }
  return result;
}

std::optional<ComponentBox> largest_component_box(std::vector<std::uint8_t>& mask,
                                                  const core::Index3& size,
                                                  Connectivity connectivity) {
  const std::int64_t count = size[0] * size[1] * size[2];
  CAJAL_CHECK(static_cast<std::int64_t>(mask.size()) == count)
      << "mask of " << mask.size() << " voxels for a grid of " << count;
  constexpr std::uint8_t kVisited = 2;
  const auto offsets = neighbour_offsets(connectivity);
  std::optional<ComponentBox> largest;
  std::deque<std::int64_t> queue;
  for (std::int64_t seed = 0; seed < count; ++seed) {
    auto& seed_mark = mask[static_cast<std::size_t>(seed)];
    if (seed_mark == 0 || seed_mark == kVisited) {
      continue;
    }
    seed_mark = kVisited;
    queue.push_back(seed);
    ComponentBox box;
    box.low = {size[0], size[1], size[2]};
    box.high = {-1, -1, -1};
    while (!queue.empty()) {
      const std::int64_t v = queue.front();
      queue.pop_front();
      ++box.voxels;
      const core::Index3 index{v % size[0], (v / size[0]) % size[1], v / (size[0] * size[1])};
      for (int c = 0; c < 3; ++c) {
        box.low[c] = std::min(box.low[c], index[c]);
        box.high[c] = std::max(box.high[c], index[c]);
      }
      for (const auto& o : offsets) {
        const std::int64_t ni = index[0] + o.di;
        const std::int64_t nj = index[1] + o.dj;
        const std::int64_t nk = index[2] + o.dk;
        if (ni < 0 || nj < 0 || nk < 0 || ni >= size[0] || nj >= size[1] || nk >= size[2]) {
          continue;
        }
        auto& mark = mask[static_cast<std::size_t>(ni + size[0] * (nj + size[1] * nk))];
        if (mark != 0 && mark != kVisited) {
          mark = kVisited;
          queue.push_back(ni + size[0] * (nj + size[1] * nk));
        }
      }
    }
    if (!largest || box.voxels > largest->voxels) {
      largest = box;
    }
  }
  return largest;
}

PostprocessReport postprocess_labels(core::Volume& labels, const models::RunConfig& run) {
  PostprocessReport report{nlohmann::json::object()};
  for (std::size_t value = 1; value < run.labels.size(); ++value) {
    const auto& name = run.labels[value];
    const auto rule = std::find_if(run.postprocessing.begin(), run.postprocessing.end(),
                                   [&](const auto& r) { return r.label == name; });
    if (rule == run.postprocessing.end()) {
      continue;
    }
    if (!rule->keep_largest_component && !rule->fill_holes && rule->min_component_mm3 <= 0) {
      continue;
    }
    report.details[name] = apply_rule(labels, static_cast<float>(value), *rule);
  }
  return report;
}

}  // namespace cajal::pipeline
