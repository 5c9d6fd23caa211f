#include "core/geometry.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace cajal::core {

Vec3 Geometry::index_to_physical(const Vec3& index) const {
  Vec3 point = origin;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      point[r] += direction[3 * r + c] * spacing[c] * index[c];
    }
  }
  return point;
}

Vec3 Geometry::physical_to_index(const Vec3& point) const {
  // direction is orthonormal, so its inverse is its transpose.
  Vec3 index{0, 0, 0};
  for (int c = 0; c < 3; ++c) {
    double along = 0;
    for (int r = 0; r < 3; ++r) {
      along += direction[3 * r + c] * (point[r] - origin[r]);
    }
    index[c] = along / spacing[c];
  }
  return index;
}

std::string orientation_code(const Mat3& direction) {
  // LPS axes: +x toward Left, +y toward Posterior, +z toward Superior.
  static constexpr char kPositive[3] = {'L', 'P', 'S'};
  static constexpr char kNegative[3] = {'R', 'A', 'I'};
  std::string code;
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r) {
      if (std::abs(direction[3 * r + c]) > std::abs(direction[3 * best + c])) {
        best = r;
      }
    }
    code += direction[3 * best + c] >= 0 ? kPositive[best] : kNegative[best];
  }
  return code;
}

void validate_geometry(const Geometry& geometry, const std::string& what) {
  for (int c = 0; c < 3; ++c) {
    if (!(geometry.spacing[c] > 0) || !std::isfinite(geometry.spacing[c])) {
      throw Error(what + " spacing", "positive finite values in mm", to_string(geometry.spacing));
    }
    if (geometry.size[c] <= 0) {
      throw Error(what + " size", "at least one voxel along each axis",
                  std::to_string(geometry.size[0]) + "x" + std::to_string(geometry.size[1]) + "x" +
                      std::to_string(geometry.size[2]));
    }
  }
  for (int a = 0; a < 3; ++a) {
    for (int b = a; b < 3; ++b) {
      double dot = 0;
      for (int r = 0; r < 3; ++r) {
        dot += geometry.direction[3 * r + a] * geometry.direction[3 * r + b];
      }
      const double expected = a == b ? 1.0 : 0.0;
      if (!(std::abs(dot - expected) <= 1e-4)) {
        throw Error(what + " direction cosines", "an orthonormal matrix",
                    "axes " + std::to_string(a) + " and " + std::to_string(b) +
                        " with dot product " + std::to_string(dot));
      }
    }
  }
}

bool same_grid(const Geometry& a, const Geometry& b, double tolerance_mm) {
  if (a.size != b.size) {
    return false;
  }
  for (int i = 0; i < 3; ++i) {
    if (std::abs(a.origin[i] - b.origin[i]) > tolerance_mm ||
        std::abs(a.spacing[i] - b.spacing[i]) > tolerance_mm) {
      return false;
    }
  }
  for (int i = 0; i < 9; ++i) {
    if (std::abs(a.direction[i] - b.direction[i]) > 1e-4) {
      return false;
    }
  }
  return true;
}

std::string to_string(const Vec3& v) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "[%.6g, %.6g, %.6g]", v[0], v[1], v[2]);
  return buffer;
}

}  // namespace cajal::core
