#include "pipeline/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "core/error.h"
#include "pipeline/distance_transform.h"

namespace cajal::pipeline {
namespace {

constexpr double kPercentile = 0.95;
constexpr std::int64_t kLargestExactLabel = std::int64_t{1} << 24;

// Bounding box of some voxels, in voxel indices (inclusive).
struct Box {
  core::Index3 lo{std::numeric_limits<std::int64_t>::max(),
                  std::numeric_limits<std::int64_t>::max(),
                  std::numeric_limits<std::int64_t>::max()};
  core::Index3 hi{-1, -1, -1};

  bool empty() const { return hi[0] < 0; }
  void add(std::int64_t i, std::int64_t j, std::int64_t k) {
    lo = {std::min(lo[0], i), std::min(lo[1], j), std::min(lo[2], k)};
    hi = {std::max(hi[0], i), std::max(hi[1], j), std::max(hi[2], k)};
  }
  void add(const Box& other) {
    if (!other.empty()) {
      add(other.lo[0], other.lo[1], other.lo[2]);
      add(other.hi[0], other.hi[1], other.hi[2]);
    }
  }
  core::Index3 size() const {
    return empty() ? core::Index3{0, 0, 0}
                   : core::Index3{hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
  }
};

// The voxels of `volume` inside `box` for which `is_foreground(value)` holds, as 0/1.
template <typename Predicate>
std::vector<std::uint8_t> crop_mask(const core::Volume& volume, const Box& box,
                                    Predicate is_foreground) {
  const core::Index3 size = box.size();
  std::vector<std::uint8_t> mask(size[0] * size[1] * size[2]);
  std::size_t v = 0;
  for (std::int64_t k = box.lo[2]; k < box.lo[2] + size[2]; ++k) {
    for (std::int64_t j = box.lo[1]; j < box.lo[1] + size[1]; ++j) {
      for (std::int64_t i = box.lo[0]; i < box.lo[0] + size[0]; ++i, ++v) {
        mask[v] = is_foreground(volume.at(i, j, k)) ? 1 : 0;
      }
    }
  }
  return mask;
}

// Voxels of `mask` with a 6-neighbour outside it or outside the grid. The caller's grid is a box
// holding every foreground voxel of both masks, so a voxel on its edge borders background or the
// image's own edge: either way it is on the surface.
std::vector<std::uint8_t> surface_of(const std::vector<std::uint8_t>& mask,
                                     const core::Index3& size) {
  std::vector<std::uint8_t> surface(mask.size(), 0);
  const std::int64_t sj = size[0];
  const std::int64_t sk = size[0] * size[1];
  std::int64_t v = 0;
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i, ++v) {
        if (mask[v] == 0) {
          continue;
        }
        const bool on_edge =
            i == 0 || j == 0 || k == 0 || i == size[0] - 1 || j == size[1] - 1 || k == size[2] - 1;
        surface[v] = on_edge || mask[v - 1] == 0 || mask[v + 1] == 0 || mask[v - sj] == 0 ||
                             mask[v + sj] == 0 || mask[v - sk] == 0 || mask[v + sk] == 0
                         ? 1
                         : 0;
      }
    }
  }
  return surface;
}

// Distances (mm) from each voxel of `from` to the nearest voxel of `to`, in voxel order.
std::vector<double> distances_between(const std::vector<std::uint8_t>& from,
                                      const std::vector<std::uint8_t>& to, const core::Index3& size,
                                      const core::Vec3& spacing) {
  const std::vector<double> squared = squared_distance_transform(to, size, spacing);
  std::vector<double> distances;
  for (std::size_t v = 0; v < from.size(); ++v) {
    if (from[v] != 0) {
      distances.push_back(std::sqrt(squared[v]));
    }
  }
  return distances;
}

// The q-quantile of non-empty `values`, linear between the closest ranks (numpy's default).
double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + fraction * (values[above] - values[below]);
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double value : values) {
    sum += value;
  }
  return sum / static_cast<double>(values.size());
}

std::int64_t count_within(const std::vector<double>& distances, double tolerance_mm) {
  return std::count_if(distances.begin(), distances.end(),
                       [&](double d) { return d <= tolerance_mm; });
}

void check_tolerance(double tolerance_mm) {
  if (!(tolerance_mm >= 0) || !std::isfinite(tolerance_mm)) {
    throw Error("surface Dice tolerance", "a finite distance >= 0 mm",
                std::to_string(tolerance_mm));
  }
}

// Everything but the label itself, from two masks cropped to a box holding both.
LabelMetrics measure(const std::vector<std::uint8_t>& pred, const std::vector<std::uint8_t>& ref,
                     const core::Index3& size, const core::Vec3& spacing, double tolerance_mm) {
  LabelMetrics m;
  for (std::size_t v = 0; v < pred.size(); ++v) {
    m.pred_voxels += pred[v];
    m.ref_voxels += ref[v];
    m.overlap_voxels += pred[v] & ref[v];
  }
  const double voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0;
  m.pred_volume_ml = static_cast<double>(m.pred_voxels) * voxel_ml;
  m.ref_volume_ml = static_cast<double>(m.ref_voxels) * voxel_ml;
  m.volume_difference_ml = m.pred_volume_ml - m.ref_volume_ml;
  if (m.ref_voxels > 0) {
    m.volume_difference_percent = 100.0 * m.volume_difference_ml / m.ref_volume_ml;
  }
  const bool has_pred = m.pred_voxels > 0;
  const bool has_ref = m.ref_voxels > 0;
  m.presence = has_pred && has_ref ? LabelPresence::both
               : has_pred          ? LabelPresence::only_in_pred
               : has_ref           ? LabelPresence::only_in_ref
                                   : LabelPresence::neither;
  if (!has_pred && !has_ref) {
    m.dice = 1;
    m.surface_dice = 1;
    return m;
  }
  m.dice = 2.0 * static_cast<double>(m.overlap_voxels) /
           static_cast<double>(m.pred_voxels + m.ref_voxels);
  if (!has_pred || !has_ref) {
    m.surface_dice = 0;
    return m;
  }
  const std::vector<std::uint8_t> pred_surface = surface_of(pred, size);
  const std::vector<std::uint8_t> ref_surface = surface_of(ref, size);
  const std::vector<double> pred_to_ref =
      distances_between(pred_surface, ref_surface, size, spacing);
  const std::vector<double> ref_to_pred =
      distances_between(ref_surface, pred_surface, size, spacing);
  SurfaceDistances d;
  d.pred_surface_voxels = static_cast<std::int64_t>(pred_to_ref.size());
  d.ref_surface_voxels = static_cast<std::int64_t>(ref_to_pred.size());
  d.max = {*std::max_element(pred_to_ref.begin(), pred_to_ref.end()),
           *std::max_element(ref_to_pred.begin(), ref_to_pred.end())};
  d.p95 = {quantile(pred_to_ref, kPercentile), quantile(ref_to_pred, kPercentile)};
  d.mean = {mean(pred_to_ref), mean(ref_to_pred)};
  d.hausdorff = std::max(d.max.pred_to_ref, d.max.ref_to_pred);
  d.hd95 = std::max(d.p95.pred_to_ref, d.p95.ref_to_pred);
  const auto surface_voxels = static_cast<double>(d.pred_surface_voxels + d.ref_surface_voxels);
  d.assd = (d.mean.pred_to_ref * static_cast<double>(d.pred_surface_voxels) +
            d.mean.ref_to_pred * static_cast<double>(d.ref_surface_voxels)) /
           surface_voxels;
  m.surface_dice = static_cast<double>(count_within(pred_to_ref, tolerance_mm) +
                                       count_within(ref_to_pred, tolerance_mm)) /
                   surface_voxels;
  m.distances = d;
  return m;
}

// What one pass over a label map finds: each non-zero label's bounding box.
std::map<std::int64_t, Box> find_labels(const core::Volume& volume, const std::string& what) {
  std::map<std::int64_t, Box> labels;
  const core::Index3& size = volume.geometry.size;
  float last_value = 0;
  Box* last_box = nullptr;
  std::size_t v = 0;
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      for (std::int64_t i = 0; i < size[0]; ++i, ++v) {
        const float value = volume.pixels[v];
        if (value == 0) {
          continue;
        }
        if (last_box == nullptr || value != last_value) {
          if (!(std::nearbyint(value) == value) ||
              std::abs(value) > static_cast<float>(kLargestExactLabel)) {
            throw Error(what + " voxel (" + std::to_string(i) + ", " + std::to_string(j) + ", " +
                            std::to_string(k) + ")",
                        "an integer label", std::to_string(value));
          }
          last_value = value;
          last_box = &labels[static_cast<std::int64_t>(value)];
        }
        last_box->add(i, j, k);
      }
    }
  }
  return labels;
}

std::vector<std::int64_t> keys_of(const std::map<std::int64_t, Box>& labels) {
  std::vector<std::int64_t> keys;
  for (const auto& entry : labels) {
    keys.push_back(entry.first);
  }
  return keys;
}

std::vector<std::int64_t> missing_from(const std::vector<std::int64_t>& labels,
                                       const std::map<std::int64_t, Box>& other) {
  std::vector<std::int64_t> missing;
  for (std::int64_t label : labels) {
    if (other.count(label) == 0) {
      missing.push_back(label);
    }
  }
  return missing;
}

std::string format_triplet(const double* values) {
  return core::to_string(core::Vec3{values[0], values[1], values[2]});
}

}  // namespace

LabelSpec parse_label_spec(const std::string& text) {
  const std::size_t equals = text.find('=');
  const std::string number = text.substr(0, equals);
  LabelSpec spec;
  const char* end = number.data() + number.size();
  const auto [stop, error] = std::from_chars(number.data(), end, spec.value);
  if (number.empty() || error != std::errc() || stop != end || spec.value == 0) {
    throw Error("label '" + text + "'", "a non-zero integer, or N=Name", "'" + number + "'");
  }
  if (equals != std::string::npos) {
    spec.name = text.substr(equals + 1);
    if (spec.name.empty()) {
      throw Error("label '" + text + "'", "a name after '='", "nothing");
    }
  }
  return spec;
}

std::string to_string(LabelPresence presence) {
  switch (presence) {
    case LabelPresence::both:
      return "both";
    case LabelPresence::only_in_pred:
      return "only_in_pred";
    case LabelPresence::only_in_ref:
      return "only_in_ref";
    case LabelPresence::neither:
      return "neither";
  }
  CAJAL_CHECK(false) << "unknown LabelPresence " << static_cast<int>(presence);
  return {};
}

void check_same_grid(const core::Geometry& pred, const core::Geometry& ref) {
  constexpr double kMillimetres = 1e-3;
  constexpr double kCosine = 1e-4;
  if (pred.size != ref.size) {
    auto text = [](const core::Index3& s) {
      return std::to_string(s[0]) + " x " + std::to_string(s[1]) + " x " + std::to_string(s[2]);
    };
    throw Error("prediction grid size", text(ref.size) + " (the reference's)", text(pred.size));
  }
  for (int c = 0; c < 3; ++c) {
    if (std::abs(pred.spacing[c] - ref.spacing[c]) > kMillimetres) {
      throw Error("prediction spacing (mm)", core::to_string(ref.spacing) + " (the reference's)",
                  core::to_string(pred.spacing));
    }
  }
  for (int c = 0; c < 3; ++c) {
    if (std::abs(pred.origin[c] - ref.origin[c]) > kMillimetres) {
      throw Error("prediction origin (mm, LPS)", core::to_string(ref.origin) + " (the reference's)",
                  core::to_string(pred.origin));
    }
  }
  for (int row = 0; row < 3; ++row) {
    for (int c = 0; c < 3; ++c) {
      if (std::abs(pred.direction[3 * row + c] - ref.direction[3 * row + c]) > kCosine) {
        throw Error("prediction direction row " + std::to_string(row),
                    format_triplet(&ref.direction[3 * row]) + " (the reference's)",
                    format_triplet(&pred.direction[3 * row]));
      }
    }
  }
  CAJAL_CHECK(core::same_grid(pred, ref)) << "check_same_grid and core::same_grid disagree";
}

LabelMetrics compare_masks(const core::Volume& pred, const core::Volume& ref, double tolerance_mm) {
  check_same_grid(pred.geometry, ref.geometry);
  check_tolerance(tolerance_mm);
  auto is_foreground = [](float value) { return value != 0; };
  Box box;
  const core::Index3& size = pred.geometry.size;
  for (const core::Volume* volume : {&pred, &ref}) {
    std::size_t v = 0;
    for (std::int64_t k = 0; k < size[2]; ++k) {
      for (std::int64_t j = 0; j < size[1]; ++j) {
        for (std::int64_t i = 0; i < size[0]; ++i, ++v) {
          if (is_foreground(volume->pixels[v])) {
            box.add(i, j, k);
          }
        }
      }
    }
  }
  return measure(crop_mask(pred, box, is_foreground), crop_mask(ref, box, is_foreground),
                 box.size(), pred.geometry.spacing, tolerance_mm);
}

Evaluation evaluate_segmentation(const core::Volume& pred, const core::Volume& ref,
                                 const EvaluationOptions& options) {
  check_same_grid(pred.geometry, ref.geometry);
  check_tolerance(options.tolerance_mm);
  std::vector<LabelSpec> chosen = options.labels;
  std::set<std::int64_t> seen;
  for (const LabelSpec& spec : chosen) {
    if (spec.value == 0) {
      throw Error("label", "a non-zero integer (0 is background)", "0");
    }
    if (std::abs(spec.value) > kLargestExactLabel) {
      throw Error("label",
                  "at most " + std::to_string(kLargestExactLabel) +
                      " in magnitude (float pixels hold integers exactly up to there)",
                  std::to_string(spec.value));
    }
    if (!seen.insert(spec.value).second) {
      throw Error("label " + std::to_string(spec.value), "each label once", "it twice");
    }
  }
  const std::map<std::int64_t, Box> pred_boxes = find_labels(pred, "prediction");
  const std::map<std::int64_t, Box> ref_boxes = find_labels(ref, "reference");

  Evaluation evaluation;
  evaluation.geometry = ref.geometry;
  evaluation.tolerance_mm = options.tolerance_mm;
  evaluation.pred_labels = keys_of(pred_boxes);
  evaluation.ref_labels = keys_of(ref_boxes);
  evaluation.only_in_pred = missing_from(evaluation.pred_labels, ref_boxes);
  evaluation.only_in_ref = missing_from(evaluation.ref_labels, pred_boxes);
  if (chosen.empty()) {
    std::set<std::int64_t> all(evaluation.pred_labels.begin(), evaluation.pred_labels.end());
    all.insert(evaluation.ref_labels.begin(), evaluation.ref_labels.end());
    for (std::int64_t value : all) {
      chosen.push_back({value, ""});
    }
  }
  for (const LabelSpec& spec : chosen) {
    Box box;
    for (const auto* boxes : {&pred_boxes, &ref_boxes}) {
      const auto found = boxes->find(spec.value);
      if (found != boxes->end()) {
        box.add(found->second);
      }
    }
    const auto label = static_cast<float>(spec.value);
    auto is_label = [label](float value) { return value == label; };
    LabelMetrics metrics = measure(crop_mask(pred, box, is_label), crop_mask(ref, box, is_label),
                                   box.size(), ref.geometry.spacing, options.tolerance_mm);
    metrics.label = spec;
    evaluation.labels.push_back(std::move(metrics));
  }
  return evaluation;
}

}  // namespace cajal::pipeline
