// Solid shapes of the phantom, in physical millimetres (LPS): each gives an approximate signed
// distance to its surface (negative inside) and the outward normal there, from which the
// renderer computes partial-volume fractions. Distances are exact on the surface and first-order
// accurate near it, which is all the renderer needs (it looks at most a voxel away).
#pragma once

#include <memory>
#include <vector>

#include "core/geometry.h"

namespace cajal::pipeline::phantom {

using core::Vec3;

struct Sample {
  double distance = 0.0;  // mm, negative inside
  Vec3 normal{0.0, 0.0, 1.0};
};

// Axis-aligned box in mm; empty when min > max.
struct Box {
  Vec3 min{1.0, 1.0, 1.0};
  Vec3 max{-1.0, -1.0, -1.0};
  bool empty() const { return min[0] > max[0] || min[1] > max[1] || min[2] > max[2]; }
  void add(const Box& other);
  Box grown(double margin) const;
};

class Shape {
 public:
  virtual ~Shape() = default;
  virtual Sample sample(const Vec3& p) const = 0;
  // A box holding every point with distance < 0.
  virtual Box bounds() const = 0;
  // A box holding every inside point whose z lies in [z0, z1]; tighter than bounds() for shapes
  // that wander (tubes). Empty when none.
  virtual Box slab_bounds(double z0, double z1) const;
};

using ShapePtr = std::shared_ptr<const Shape>;

// Ellipsoid with semi-axes `radii`, turned by `yaw` radians about z; `taper` widens (>0) or
// narrows (<0) the x and y semi-axes linearly from bottom to top: factor 1 + taper * (z - cz) / rz.
ShapePtr ellipsoid(const Vec3& center, const Vec3& radii, double yaw = 0.0, double taper = 0.0);
// Elliptic cylinder along z between z0 and z1, turned by `yaw` about z.
ShapePtr elliptic_cylinder(double cx, double cy, double rx, double ry, double z0, double z1,
                           double yaw = 0.0);

// The torso: elliptic cross-sections whose semi-axes follow a piecewise-linear profile in z, with
// the back flattened at y = cy + back * ry(z).
struct TorsoLevel {
  double z, rx, ry;
};
ShapePtr torso(double cx, double cy, std::vector<TorsoLevel> profile, double back);

// A tube through `points` (mm) with radius interpolated linearly between the points' radii.
struct TubePoint {
  Vec3 p;
  double radius;
};
ShapePtr tube(std::vector<TubePoint> points);

// Grows (delta > 0) or shrinks (delta < 0) a shape by delta mm.
ShapePtr offset(ShapePtr shape, double delta);
ShapePtr unite(ShapePtr a, ShapePtr b);
ShapePtr intersect(ShapePtr a, ShapePtr b);
ShapePtr subtract(ShapePtr a, ShapePtr b);

}  // namespace cajal::pipeline::phantom
