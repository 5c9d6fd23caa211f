// Reorientation by axis permutation and flips (declared in pipeline/preprocess.h).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "pipeline/phantom.h"
#include "pipeline/preprocess.h"

namespace cajal::pipeline {
namespace {

// Copies voxels between the grids of `step`: after(o) = before(source of o). With `forward`
// false, writes before from after (the same correspondence, read the other way).
std::vector<float> copy_voxels(const std::vector<float>& src, const ReorientStep& step,
                               bool forward) {
  const auto& in = step.before.size;
  const auto& out = step.after.size;
  const std::array<std::int64_t, 3> in_stride{1, in[0], in[0] * in[1]};
  // Offset in `before` of after-voxel (0, 0, 0), and its change per step along each after-axis.
  std::int64_t base = 0;
  std::array<std::int64_t, 3> step_of{};
  for (int a = 0; a < 3; ++a) {
    const int s = step.source_axis[static_cast<std::size_t>(a)];
    const auto stride = in_stride[static_cast<std::size_t>(s)];
    if (step.flip[static_cast<std::size_t>(a)]) {
      base += (in[s] - 1) * stride;
      step_of[static_cast<std::size_t>(a)] = -stride;
    } else {
      step_of[static_cast<std::size_t>(a)] = stride;
    }
  }
  std::vector<float> dst(src.size());
  std::size_t n = 0;
  for (std::int64_t k = 0; k < out[2]; ++k) {
    for (std::int64_t j = 0; j < out[1]; ++j) {
      std::int64_t offset = base + k * step_of[2] + j * step_of[1];
      for (std::int64_t i = 0; i < out[0]; ++i, ++n, offset += step_of[0]) {
        if (forward) {
          dst[n] = src[static_cast<std::size_t>(offset)];
        } else {
          dst[static_cast<std::size_t>(offset)] = src[n];
        }
      }
    }
  }
  return dst;
}

}  // namespace

ReorientStep plan_reorientation(const core::Geometry& geometry, const std::string& orientation) {
  const core::Mat3 target = direction_of_orientation(orientation);
  std::array<int, 3> permutation{0, 1, 2};
  std::array<int, 3> best = permutation;
  double best_score = -1;
  // Every assignment of input axes to target axes; the largest sum of |cosines| wins, the first
  // (identity first) on ties.
  do {
    double score = 0;
    for (int a = 0; a < 3; ++a) {
      const auto axis = geometry.axis_direction(permutation[static_cast<std::size_t>(a)]);
      double dot = 0;
      for (int r = 0; r < 3; ++r) {
        dot += axis[static_cast<std::size_t>(r)] * target[static_cast<std::size_t>(3 * r + a)];
      }
      score += std::abs(dot);
    }
    if (score > best_score + 1e-9) {
      best_score = score;
      best = permutation;
    }
  } while (std::next_permutation(permutation.begin(), permutation.end()));

  ReorientStep step;
  step.before = geometry;
  step.source_axis = best;
  core::Geometry& after = step.after;
  core::Vec3 first{0, 0, 0};  // index in `before` of after-voxel (0, 0, 0)
  for (int a = 0; a < 3; ++a) {
    const auto ua = static_cast<std::size_t>(a);
    const int s = best[ua];
    const auto axis = geometry.axis_direction(s);
    double dot = 0;
    for (int r = 0; r < 3; ++r) {
      dot += axis[static_cast<std::size_t>(r)] * target[static_cast<std::size_t>(3 * r + a)];
    }
    step.flip[ua] = dot < 0;
    after.size[ua] = geometry.size[static_cast<std::size_t>(s)];
    after.spacing[ua] = geometry.spacing[static_cast<std::size_t>(s)];
    for (int r = 0; r < 3; ++r) {
      // + 0.0 turns -0.0 into 0.0, so the record reads cleanly.
      after.direction[static_cast<std::size_t>(3 * r + a)] =
          (step.flip[ua] ? -axis[static_cast<std::size_t>(r)] : axis[static_cast<std::size_t>(r)]) +
          0.0;
    }
    first[static_cast<std::size_t>(s)] =
        step.flip[ua] ? static_cast<double>(geometry.size[static_cast<std::size_t>(s)] - 1) : 0.0;
  }
  after.origin = geometry.index_to_physical(first);
  return step;
}

core::Volume apply_reorientation(const core::Volume& volume, const ReorientStep& step) {
  CAJAL_CHECK(volume.geometry.size == step.before.size) << "reorientation planned for another grid";
  return {step.after, volume.pixel_type, copy_voxels(volume.pixels, step, true)};
}

core::Volume undo_reorientation(const core::Volume& volume, const ReorientStep& step) {
  CAJAL_CHECK(volume.geometry.size == step.after.size) << "reorientation undone on another grid";
  return {step.before, volume.pixel_type, copy_voxels(volume.pixels, step, false)};
}

}  // namespace cajal::pipeline
