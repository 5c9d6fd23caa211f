#include "pipeline/distance_transform.h"

#include <cstddef>
#include <limits>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Scratch space for one line, reused across lines.
struct Envelope {
  std::vector<double> values;       // f along the line
  std::vector<std::int64_t> sites;  // parabolas of the lower envelope
  std::vector<double> boundaries;   // where each takes over, in voxel units
  std::vector<double> result;       // transformed line

  explicit Envelope(std::int64_t n) : values(n), sites(n), boundaries(n + 1), result(n) {}
};

// One-dimensional transform of `env.values` (n samples `step` mm apart):
// result[p] = min over q of (step * (p - q))² + values[q]. Samples at +infinity are no sites.
void transform_line(Envelope& env, std::int64_t n, double step) {
  const double step2 = step * step;
  // Parabola q in voxel units: step2 * (p - q)² + f(q). Where parabolas q and r (q > r) meet:
  // p = ((f(q) + step2 q²) - (f(r) + step2 r²)) / (2 step2 (q - r)).
  auto meet = [&](std::int64_t q, std::int64_t r) {
    const double fq = env.values[q];
    const double fr = env.values[r];
    const double dq = static_cast<double>(q);
    const double dr = static_cast<double>(r);
    return ((fq + step2 * dq * dq) - (fr + step2 * dr * dr)) / (2.0 * step2 * (dq - dr));
  };
  std::int64_t k = -1;  // index of the last parabola in the envelope
  for (std::int64_t q = 0; q < n; ++q) {
    if (env.values[q] == kInfinity) {
      continue;
    }
    if (k < 0) {
      k = 0;
      env.sites[0] = q;
      env.boundaries[0] = -kInfinity;
      env.boundaries[1] = kInfinity;
      continue;
    }
    // boundaries[0] is -infinity, so the first parabola is never removed.
    double s = meet(q, env.sites[k]);
    while (s <= env.boundaries[k]) {
      --k;
      s = meet(q, env.sites[k]);
    }
    ++k;
    env.sites[k] = q;
    env.boundaries[k] = s;
    env.boundaries[k + 1] = kInfinity;
  }
  if (k < 0) {
    for (std::int64_t p = 0; p < n; ++p) {
      env.result[p] = kInfinity;
    }
    return;
  }
  std::int64_t j = 0;
  for (std::int64_t p = 0; p < n; ++p) {
    const double dp = static_cast<double>(p);
    while (env.boundaries[j + 1] < dp) {
      ++j;
    }
    const std::int64_t q = env.sites[j];
    const double d = step * (dp - static_cast<double>(q));
    env.result[p] = d * d + env.values[q];
  }
}

// Transforms every line of `field` along `axis` in place.
void transform_axis(std::vector<double>& field, const core::Index3& size, int axis, double step) {
  const std::int64_t n = size[axis];
  const std::int64_t stride = axis == 0 ? 1 : axis == 1 ? size[0] : size[0] * size[1];
  // The two axes other than `axis` enumerate the lines.
  const int a = axis == 0 ? 1 : 0;
  const int b = axis == 2 ? 1 : 2;
  const std::int64_t stride_a = a == 0 ? 1 : size[0];
  const std::int64_t stride_b = b == 1 ? size[0] : size[0] * size[1];
  Envelope env(n);
  for (std::int64_t ib = 0; ib < size[b]; ++ib) {
    for (std::int64_t ia = 0; ia < size[a]; ++ia) {
      const std::int64_t start = ia * stride_a + ib * stride_b;
      bool any_site = false;
      for (std::int64_t p = 0; p < n; ++p) {
        const double value = field[start + p * stride];
        env.values[p] = value;
        any_site = any_site || value != kInfinity;
      }
      if (!any_site) {
        continue;
      }
      transform_line(env, n, step);
      for (std::int64_t p = 0; p < n; ++p) {
        field[start + p * stride] = env.result[p];
      }
    }
  }
}

}  // namespace

std::vector<double> squared_distance_transform(const std::vector<std::uint8_t>& feature,
                                               const core::Index3& size,
                                               const core::Vec3& spacing) {
  CAJAL_CHECK(static_cast<std::int64_t>(feature.size()) == size[0] * size[1] * size[2])
      << "feature has " << feature.size() << " voxels for a grid of " << size[0] << "x" << size[1]
      << "x" << size[2];
  std::vector<double> field(feature.size());
  for (std::size_t v = 0; v < feature.size(); ++v) {
    field[v] = feature[v] != 0 ? 0.0 : kInfinity;
  }
  if (field.empty()) {
    return field;
  }
  for (int axis = 0; axis < 3; ++axis) {
    transform_axis(field, size, axis, spacing[axis]);
  }
  return field;
}

}  // namespace cajal::pipeline
