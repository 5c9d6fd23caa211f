#include "io/slice_order.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/error.h"

namespace cajal::io::detail {
namespace {

using core::Vec3;

double dot(const Vec3& a, const Vec3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a) {
  return std::sqrt(dot(a, a));
}
Vec3 scaled(const Vec3& a, double s) {
  return {a[0] * s, a[1] * s, a[2] * s};
}
Vec3 minus(const Vec3& a, const Vec3& b) {
  return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}

std::string mm(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g mm", value);
  return buffer;
}

}  // namespace

SliceLayout order_slices(const std::vector<SliceInput>& slices, const PlaneInput& plane) {
  CAJAL_CHECK(!slices.empty()) << "order_slices needs at least one slice";
  SliceLayout layout;
  Vec3 row{plane.orientation[0], plane.orientation[1], plane.orientation[2]};
  Vec3 column{plane.orientation[3], plane.orientation[4], plane.orientation[5]};
  const double row_norm = norm(row);
  const double column_norm = norm(column);
  if (row_norm < 0.9 || row_norm > 1.1 || column_norm < 0.9 || column_norm > 1.1 ||
      std::abs(dot(row, column)) / (row_norm * column_norm) > 1e-3) {
    layout.problem = "ImageOrientationPatient is not two orthogonal unit vectors";
    return layout;
  }
  row = scaled(row, 1.0 / row_norm);
  column = scaled(column, 1.0 / column_norm);
  const Vec3 normal = cross(row, column);

  std::vector<double> along(slices.size());
  for (std::size_t s = 0; s < slices.size(); ++s) {
    along[s] = dot(slices[s].position, normal);
  }
  layout.order.resize(slices.size());
  std::iota(layout.order.begin(), layout.order.end(), std::size_t{0});
  std::sort(layout.order.begin(), layout.order.end(), [&](std::size_t a, std::size_t b) {
    if (along[a] != along[b]) {
      return along[a] < along[b];
    }
    return slices[a].tie_breaker < slices[b].tie_breaker;
  });

  core::Geometry& g = layout.geometry;
  g.size = {plane.columns, plane.rows, static_cast<std::int64_t>(slices.size())};
  // Axis i runs along a row (the row cosine), axis j down the columns, axis k along the normal.
  g.direction = {row[0],    column[0], normal[0], row[1],   column[1],
                 normal[1], row[2],    column[2], normal[2]};
  g.origin = slices[layout.order.front()].position;
  g.spacing = {plane.pixel_spacing[1], plane.pixel_spacing[0], plane.single_slice_spacing};
  if (slices.size() == 1) {
    return layout;
  }

  std::vector<double> gaps;
  for (std::size_t s = 1; s < layout.order.size(); ++s) {
    gaps.push_back(along[layout.order[s]] - along[layout.order[s - 1]]);
  }
  std::vector<double> sorted_gaps = gaps;
  std::nth_element(sorted_gaps.begin(), sorted_gaps.begin() + sorted_gaps.size() / 2,
                   sorted_gaps.end());
  const double median = sorted_gaps[sorted_gaps.size() / 2];
  g.spacing[2] = median;

  // Names the gap after sorted slice s, for messages.
  const auto where = [&](std::size_t s) {
    return "between slices " + std::to_string(s) + " and " + std::to_string(s + 1) + " (at " +
           mm(along[layout.order[s]]) + " and " + mm(along[layout.order[s + 1]]) +
           " along the normal)";
  };
  for (std::size_t s = 0; s < gaps.size(); ++s) {
    const Vec3& from = slices[layout.order[s]].position;
    const Vec3& to = slices[layout.order[s + 1]].position;
    if (gaps[s] < 1e-3) {
      layout.problem = "two slices at the same position " + where(s) +
                       ": several acquisitions or time points in one series";
      return layout;
    }
    const Vec3 step = minus(to, from);
    const Vec3 sideways = minus(step, scaled(normal, dot(step, normal)));
    if (norm(sideways) > std::max(0.01, 2e-3 * norm(step))) {
      const double degrees = std::atan2(norm(sideways), gaps[s]) * 180.0 / M_PI;
      char tilt[32];
      std::snprintf(tilt, sizeof tilt, "%.2f", degrees);
      layout.problem = "gantry tilt or sheared slices: slice positions move " + mm(norm(sideways)) +
                       " sideways " + where(s) + " (" + tilt +
                       " degrees); cajal does not resample tilted series";
      return layout;
    }
  }
  const double tolerance = std::max(0.01, 0.01 * median);
  for (std::size_t s = 0; s < gaps.size(); ++s) {
    if (std::abs(gaps[s] - median) <= tolerance) {
      continue;
    }
    const double ratio = gaps[s] / median;
    if (ratio > 1.5 && std::abs(ratio - std::round(ratio)) * median <= tolerance) {
      layout.problem = "missing slices: gap of " + mm(gaps[s]) + " " + where(s) + ", expected " +
                       mm(median) + " (" + std::to_string(std::lround(ratio) - 1) +
                       " slice(s) missing)";
    } else {
      layout.problem = "uneven slice spacing: gap of " + mm(gaps[s]) + " " + where(s) +
                       ", while the median gap is " + mm(median);
    }
    return layout;
  }
  return layout;
}

}  // namespace cajal::io::detail
