#include "pipeline/postprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

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

namespace {

// Connected components found on runs: maximal stretches of mask voxels along x, joined by
// union-find with the runs of the rows before them in raster order that they touch ((j - 1, k)
// and, for 26-connectivity, (j - 1, k - 1), (j, k - 1), (j + 1, k - 1); face neighbours only
// (j - 1, k) and (j, k - 1)). Work and memory grow with the runs, not the voxels, so a body mask
// of a 512 x 512 x 300 CT takes one scan. Components are numbered 0, 1, ... in the raster order of
// their first voxel, as a flood fill seeded in raster order numbers them.
struct RunComponents {
  std::vector<std::int64_t>
      row_start;                    // runs of row r = j + size[1] * k at [row_start[r], [r + 1])
  std::vector<std::int32_t> begin;  // first x of each run
  std::vector<std::int32_t> end;    // one past its last x
  std::vector<std::int64_t> component;  // of each run
  std::int64_t count = 0;
};

// The first x >= i in [i, n) whose byte is zero (`nonzero`) or nonzero (not `nonzero`), or n:
// eight bytes at a time over long stretches, which air and the body's inside are.
std::int64_t skip_bytes(const std::uint8_t* row, std::int64_t i, std::int64_t n, bool nonzero) {
  constexpr std::uint64_t ones = 0x0101010101010101u;
  constexpr std::uint64_t highs = 0x8080808080808080u;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, row + i, sizeof word);
    // (word - ones) & ~word & highs is nonzero exactly when some byte of word is zero.
    const bool stop = nonzero ? ((word - ones) & ~word & highs) != 0 : word != 0;
    if (stop) {
      break;
    }
  }
  while (i < n && (row[i] != 0) == nonzero) {
    ++i;
  }
  return i;
}

// `row_mask(r)` gives the mask bytes of row r = j + size[1] * k (read before the next call).
template <typename RowMask>
RunComponents run_components(const RowMask& row_mask, const core::Index3& size,
                             Connectivity connectivity) {
  CAJAL_CHECK(size[0] < (std::int64_t{1} << 30)) << "rows of " << size[0] << " voxels";
  RunComponents runs;
  const std::int64_t rows = size[1] * size[2];
  runs.row_start.reserve(static_cast<std::size_t>(rows + 1));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* voxel = row_mask(r);
    runs.row_start.push_back(static_cast<std::int64_t>(runs.begin.size()));
    for (std::int64_t i = 0; i < size[0];) {
      if (voxel[i] == 0) {
        i = skip_bytes(voxel, i + 1, size[0], false);
        continue;
      }
      const std::int64_t first = i;
      i = skip_bytes(voxel, i + 1, size[0], true);
      runs.begin.push_back(static_cast<std::int32_t>(first));
      runs.end.push_back(static_cast<std::int32_t>(i));
    }
  }
  runs.row_start.push_back(static_cast<std::int64_t>(runs.begin.size()));

  // Union-find over runs; the root of a set is its earliest run.
  std::vector<std::int64_t>& parent = runs.component;
  parent.resize(runs.begin.size());
  for (std::size_t n = 0; n < parent.size(); ++n) {
    parent[n] = static_cast<std::int64_t>(n);
  }
  const auto find = [&parent](std::int64_t n) {
    while (parent[static_cast<std::size_t>(n)] != n) {
      const auto up = parent[static_cast<std::size_t>(n)];
      parent[static_cast<std::size_t>(n)] = parent[static_cast<std::size_t>(up)];
      n = up;
    }
    return n;
  };
  // Diagonal neighbours touch runs one voxel further along x.
  const std::int32_t reach = connectivity == Connectivity::full26 ? 1 : 0;
  const auto join_rows = [&](std::int64_t row, std::int64_t other) {
    std::int64_t a = runs.row_start[static_cast<std::size_t>(row)];
    const std::int64_t a_end = runs.row_start[static_cast<std::size_t>(row + 1)];
    std::int64_t b = runs.row_start[static_cast<std::size_t>(other)];
    const std::int64_t b_end = runs.row_start[static_cast<std::size_t>(other + 1)];
    while (a < a_end && b < b_end) {
      const auto sa = static_cast<std::size_t>(a);
      const auto sb = static_cast<std::size_t>(b);
      if (runs.begin[sa] < runs.end[sb] + reach && runs.begin[sb] < runs.end[sa] + reach) {
        const std::int64_t ra = find(a);
        const std::int64_t rb = find(b);
        if (ra != rb) {
          parent[static_cast<std::size_t>(std::max(ra, rb))] = std::min(ra, rb);
        }
      }
      if (runs.end[sa] < runs.end[sb]) {
        ++a;
      } else {
        ++b;
      }
    }
  };
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::int64_t row = j + size[1] * k;
      if (runs.row_start[static_cast<std::size_t>(row)] ==
          runs.row_start[static_cast<std::size_t>(row + 1)]) {
        continue;
      }
      if (j > 0) {
        join_rows(row, row - 1);
      }
      if (k > 0) {
        const std::int64_t below = row - size[1];
        join_rows(row, below);
        if (connectivity == Connectivity::full26) {
          if (j > 0) {
            join_rows(row, below - 1);
          }
          if (j + 1 < size[1]) {
            join_rows(row, below + 1);
          }
        }
      }
    }
  }
  // A parent never comes after its child, so one pass in run order numbers the sets by their
  // first voxel: a root takes the next number (stored as -1 - number while parents are still
  // being read), every other run the number its parent already holds.
  for (std::size_t n = 0; n < parent.size(); ++n) {
    const std::int64_t up = parent[n];
    parent[n] = up == static_cast<std::int64_t>(n) ? -1 - runs.count++
                                                   : parent[static_cast<std::size_t>(up)];
  }
  for (auto& c : parent) {
    c = -1 - c;
  }
  return runs;
}

RunComponents run_components(const std::vector<std::uint8_t>& mask, const core::Index3& size,
                             Connectivity connectivity) {
  const std::int64_t voxels = size[0] * size[1] * size[2];
  CAJAL_CHECK(static_cast<std::int64_t>(mask.size()) == voxels)
      << "mask of " << mask.size() << " voxels for a grid of " << voxels;
  return run_components([&mask, &size](std::int64_t r) { return mask.data() + r * size[0]; }, size,
                        connectivity);
}

// The first of the largest components of `runs`, by its voxel count and box.
ComponentBox largest_box(const RunComponents& runs, const core::Index3& size) {
  std::vector<ComponentBox> boxes(static_cast<std::size_t>(runs.count),
                                  ComponentBox{0, size, {-1, -1, -1}});
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::int64_t row = j + size[1] * k;
      for (auto n = runs.row_start[static_cast<std::size_t>(row)];
           n < runs.row_start[static_cast<std::size_t>(row + 1)]; ++n) {
        const auto sn = static_cast<std::size_t>(n);
        ComponentBox& box = boxes[static_cast<std::size_t>(runs.component[sn])];
        box.voxels += runs.end[sn] - runs.begin[sn];
        const core::Index3 low{runs.begin[sn], j, k};
        const core::Index3 high{runs.end[sn] - 1, j, k};
        for (int c = 0; c < 3; ++c) {
          box.low[c] = std::min(box.low[c], low[c]);
          box.high[c] = std::max(box.high[c], high[c]);
        }
      }
    }
  }
  // The first of the largest: max_element keeps the earliest of equal ones.
  return *std::max_element(boxes.begin(), boxes.end(),
                           [](const auto& a, const auto& b) { return a.voxels < b.voxels; });
}

}  // namespace

Components label_components(const std::vector<std::uint8_t>& mask, const core::Index3& size,
                            Connectivity connectivity) {
  const RunComponents runs = run_components(mask, size, connectivity);
  CAJAL_CHECK(runs.count < std::numeric_limits<std::int32_t>::max()) << runs.count << " components";
  Components result;
  result.id.assign(mask.size(), 0);
  result.sizes.assign(static_cast<std::size_t>(runs.count), 0);
  result.touches_border.assign(static_cast<std::size_t>(runs.count), false);
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::int64_t row = j + size[1] * k;
      const bool border_row = j == 0 || k == 0 || j == size[1] - 1 || k == size[2] - 1;
      for (auto n = runs.row_start[static_cast<std::size_t>(row)];
           n < runs.row_start[static_cast<std::size_t>(row + 1)]; ++n) {
        const auto sn = static_cast<std::size_t>(n);
        const auto c = static_cast<std::size_t>(runs.component[sn]);
        std::fill(result.id.begin() + static_cast<std::ptrdiff_t>(row * size[0] + runs.begin[sn]),
                  result.id.begin() + static_cast<std::ptrdiff_t>(row * size[0] + runs.end[sn]),
                  static_cast<std::int32_t>(c + 1));
        result.sizes[c] += runs.end[sn] - runs.begin[sn];
        if (border_row || runs.begin[sn] == 0 || runs.end[sn] == size[0]) {
          result.touches_border[c] = true;
        }
      }
    }
  }
  return result;
}

std::optional<ComponentBox> largest_component_box(const std::vector<std::uint8_t>& mask,
                                                  const core::Index3& size,
                                                  Connectivity connectivity) {
  const RunComponents runs = run_components(mask, size, connectivity);
  if (runs.count == 0) {
    return std::nullopt;
  }
  return largest_box(runs, size);
}

std::optional<ComponentBox> largest_component_box_above(const std::vector<float>& pixels,
                                                        float threshold, const core::Index3& size,
                                                        Connectivity connectivity) {
  const std::int64_t voxels = size[0] * size[1] * size[2];
  CAJAL_CHECK(static_cast<std::int64_t>(pixels.size()) == voxels)
      << pixels.size() << " pixels for a grid of " << voxels;
  // One row of mask at a time, not a byte per voxel of the grid.
  std::vector<std::uint8_t> row(static_cast<std::size_t>(size[0]));
  const RunComponents runs = run_components(
      [&](std::int64_t r) {
        const float* p = pixels.data() + r * size[0];
        for (std::size_t i = 0; i < row.size(); ++i) {
          row[i] = p[i] > threshold ? 1 : 0;
        }
        return row.data();
      },
      size, connectivity);
  if (runs.count == 0) {
    return std::nullopt;
  }
  return largest_box(runs, size);
}

PostprocessReport postprocess_labels(core::Volume& labels, const models::RunConfig& run) {
  PostprocessReport report{nlohmann::json::object()};
  // Each rule works in its label's box grown by one voxel (clipped to the grid), not on the whole
  // grid: a component of the label lies inside the box, and the added shell holds no voxel of the
  // label, so a background component touches the smaller box's border exactly when it touches
  // the grid's (it either reaches the shell, which is background joined to the rest of the grid
  // and to its border, or lies where the box is clipped at the grid's border). Same result,
  // work in proportion to the structure.
  const core::Index3& size = labels.geometry.size;
  std::vector<core::Index3> low(run.labels.size(), size);
  std::vector<core::Index3> high(run.labels.size(), core::Index3{-1, -1, -1});
  std::size_t v = 0;
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i, ++v) {
        const float value = labels.pixels[v];
        if (value >= 1.0f && value < static_cast<float>(run.labels.size())) {
          const auto l = static_cast<std::size_t>(value);
          const core::Index3 index{i, j, k};
          for (int c = 0; c < 3; ++c) {
            low[l][c] = std::min(low[l][c], index[c]);
            high[l][c] = std::max(high[l][c], index[c]);
          }
        }
      }
    }
  }
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
    core::Index3 begin{0, 0, 0};
    core::Index3 box{1, 1, 1};  // an empty label: one voxel, not the label's
    if (high[value][0] >= 0) {
      for (int c = 0; c < 3; ++c) {
        begin[c] = std::max<std::int64_t>(0, low[value][c] - 1);
        box[c] = std::min(size[c], high[value][c] + 2) - begin[c];
      }
    }
    // Of the geometry only the spacing and size are read.
    core::Volume part{labels.geometry, labels.pixel_type,
                      std::vector<float>(static_cast<std::size_t>(box[0] * box[1] * box[2]))};
    part.geometry.size = box;
    if (high[value][0] >= 0) {
      core::copy_box(labels.pixels, size, begin, part.pixels, box, {0, 0, 0}, box);
    }
    nlohmann::json detail = apply_rule(part, static_cast<float>(value), *rule);
    if (detail["removed_voxels"].get<std::int64_t>() > 0 ||
        detail["filled_voxels"].get<std::int64_t>() > 0) {
      core::copy_box(part.pixels, box, {0, 0, 0}, labels.pixels, size, begin, box);
    }
    report.details[name] = std::move(detail);
  }
  return report;
}

}  // namespace cajal::pipeline
