// Where a voxel grid lies in the patient: ITK's words, physical units in mm, LPS coordinates.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cajal::core {

using Vec3 = std::array<double, 3>;
using Index3 = std::array<std::int64_t, 3>;
// Row-major 3x3; column c is the unit direction of voxel axis c in LPS.
using Mat3 = std::array<double, 9>;

struct Geometry {
  Index3 size{0, 0, 0};         // voxels along i, j, k
  Vec3 spacing{1.0, 1.0, 1.0};  // mm between voxel centres along i, j, k
  Vec3 origin{0.0, 0.0, 0.0};   // mm, LPS, centre of voxel (0, 0, 0)
  Mat3 direction{1, 0, 0, 0, 1, 0, 0, 0, 1};

  std::int64_t voxel_count() const { return size[0] * size[1] * size[2]; }
  // Physical point (mm, LPS) of a continuous index.
  Vec3 index_to_physical(const Vec3& index) const;
  // Continuous index of a physical point (mm, LPS).
  Vec3 physical_to_index(const Vec3& point) const;
  // The column of direction for axis c.
  Vec3 axis_direction(int c) const { return {direction[c], direction[3 + c], direction[6 + c]}; }
};

// Three letters naming the patient direction each voxel axis points toward, nibabel's
// convention: identity direction in LPS gives "LPS"; a RAS-stored NIfTI gives "RAS".
// An axis that is oblique takes the letter of its largest component.
std::string orientation_code(const Mat3& direction);

// Checks that direction is orthonormal to 1e-4 and spacing positive; throws Error naming `what`.
void validate_geometry(const Geometry& geometry, const std::string& what);

// Largest absolute difference between two geometries' origins (mm) and directions; used to check
// that two grids are the same.
bool same_grid(const Geometry& a, const Geometry& b, double tolerance_mm = 1e-3);

std::string to_string(const Vec3& v);

}  // namespace cajal::core
