#include "pipeline/phantom_shapes.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace cajal::pipeline::phantom {
namespace {

double length(const Vec3& v) {
  return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
}

// Approximate signed distance to the ellipse with semi-axes (a, b) of a point (x, y) in the
// ellipse's frame, and the outward normal (nx, ny) there.
void ellipse_distance(double x, double y, double a, double b, double& d, double& nx, double& ny) {
  const double ux = x / a, uy = y / b;
  const double gx = x / (a * a), gy = y / (b * b);
  const double k0 = std::sqrt(ux * ux + uy * uy);
  const double k1 = std::sqrt(gx * gx + gy * gy);
  if (k1 < 1e-12) {
    d = -std::min(a, b);
    nx = 1.0;
    ny = 0.0;
    return;
  }
  d = k0 * (k0 - 1.0) / k1;
  nx = gx / k1;
  ny = gy / k1;
}

Box xy_box(double cx, double cy, double ex, double ey, double z0, double z1) {
  return Box{{cx - ex, cy - ey, z0}, {cx + ex, cy + ey, z1}};
}

// Half extents of an ellipse (a, b) turned by yaw.
std::pair<double, double> turned_extent(double a, double b, double c, double s) {
  return {std::sqrt(a * a * c * c + b * b * s * s), std::sqrt(a * a * s * s + b * b * c * c)};
}

class Ellipsoid : public Shape {
 public:
  Ellipsoid(const Vec3& center, const Vec3& radii, double yaw, double taper)
      : c_(center), r_(radii), cos_(std::cos(yaw)), sin_(std::sin(yaw)), taper_(taper) {}
  Sample sample(const Vec3& p) const override {
    const double dx = p[0] - c_[0], dy = p[1] - c_[1], dz = p[2] - c_[2];
    const double x = cos_ * dx + sin_ * dy;
    const double y = -sin_ * dx + cos_ * dy;
    const double f = std::max(0.2, 1.0 + taper_ * dz / r_[2]);
    const double a = r_[0] * f, b = r_[1] * f, c = r_[2];
    const double g[3] = {x / (a * a), y / (b * b), dz / (c * c)};
    const double k0 = std::sqrt(x * x / (a * a) + y * y / (b * b) + dz * dz / (c * c));
    const double k1 = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
    Sample s;
    if (k1 < 1e-12) {
      s.distance = -std::min({a, b, c});
      return s;
    }
    s.distance = k0 * (k0 - 1.0) / k1;
    s.normal = {(cos_ * g[0] - sin_ * g[1]) / k1, (sin_ * g[0] + cos_ * g[1]) / k1, g[2] / k1};
    return s;
  }
  Box bounds() const override {
    const double f = 1.0 + std::abs(taper_);
    const auto [ex, ey] = turned_extent(r_[0] * f, r_[1] * f, cos_, sin_);
    return xy_box(c_[0], c_[1], ex, ey, c_[2] - r_[2], c_[2] + r_[2]);
  }

 private:
  Vec3 c_, r_;
  double cos_, sin_, taper_;
};

class EllipticCylinder : public Shape {
 public:
  EllipticCylinder(double cx, double cy, double rx, double ry, double z0, double z1, double yaw)
      : cx_(cx),
        cy_(cy),
        rx_(rx),
        ry_(ry),
        z0_(z0),
        z1_(z1),
        cos_(std::cos(yaw)),
        sin_(std::sin(yaw)) {}
  Sample sample(const Vec3& p) const override {
    const double dx = p[0] - cx_, dy = p[1] - cy_;
    double d = 0, nx = 0, ny = 0;
    ellipse_distance(cos_ * dx + sin_ * dy, -sin_ * dx + cos_ * dy, rx_, ry_, d, nx, ny);
    const Vec3 n_xy{cos_ * nx - sin_ * ny, sin_ * nx + cos_ * ny, 0.0};
    const double dz = std::max(z0_ - p[2], p[2] - z1_);
    const Vec3 n_z{0.0, 0.0, p[2] > 0.5 * (z0_ + z1_) ? 1.0 : -1.0};
    Sample s;
    if (d > 0 && dz > 0) {
      s.distance = std::sqrt(d * d + dz * dz);
      s.normal = {n_xy[0] * d / s.distance, n_xy[1] * d / s.distance, n_z[2] * dz / s.distance};
    } else if (d > dz) {
      s = {d, n_xy};
    } else {
      s = {dz, n_z};
    }
    return s;
  }
  Box bounds() const override {
    const auto [ex, ey] = turned_extent(rx_, ry_, cos_, sin_);
    return xy_box(cx_, cy_, ex, ey, z0_, z1_);
  }

 private:
  double cx_, cy_, rx_, ry_, z0_, z1_, cos_, sin_;
};

class Torso : public Shape {
 public:
  Torso(double cx, double cy, std::vector<TorsoLevel> profile, double back)
      : cx_(cx), cy_(cy), profile_(std::move(profile)), back_(back) {}
  Sample sample(const Vec3& p) const override {
    const TorsoLevel level = at(p[2]);
    double d = 0, nx = 0, ny = 0;
    ellipse_distance(p[0] - cx_, p[1] - cy_, level.rx, level.ry, d, nx, ny);
    const double d_back = p[1] - (cy_ + back_ * level.ry);
    if (d_back > d) {
      return {d_back, {0.0, 1.0, 0.0}};
    }
    return {d, {nx, ny, 0.0}};
  }
  Box bounds() const override {
    double rx = 0, ry = 0;
    for (const TorsoLevel& level : profile_) {
      rx = std::max(rx, level.rx);
      ry = std::max(ry, level.ry);
    }
    return xy_box(cx_, cy_, rx, ry, -1e9, 1e9);
  }

 private:
  TorsoLevel at(double z) const {
    if (z <= profile_.front().z) {
      return profile_.front();
    }
    for (std::size_t n = 1; n < profile_.size(); ++n) {
      if (z <= profile_[n].z) {
        const TorsoLevel& lo = profile_[n - 1];
        const TorsoLevel& hi = profile_[n];
        const double t = (z - lo.z) / (hi.z - lo.z);
        return {z, lo.rx + t * (hi.rx - lo.rx), lo.ry + t * (hi.ry - lo.ry)};
      }
    }
    return profile_.back();
  }
  double cx_, cy_;
  std::vector<TorsoLevel> profile_;
  double back_;
};

class Tube : public Shape {
 public:
  explicit Tube(std::vector<TubePoint> points) : points_(std::move(points)) {}
  Sample sample(const Vec3& p) const override {
    Sample best{1e30, {0, 0, 1}};
    for (std::size_t n = 1; n < points_.size(); ++n) {
      const Vec3& a = points_[n - 1].p;
      const Vec3& b = points_[n].p;
      const Vec3 ab{b[0] - a[0], b[1] - a[1], b[2] - a[2]};
      const Vec3 ap{p[0] - a[0], p[1] - a[1], p[2] - a[2]};
      const double len2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
      const double t = std::clamp((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / len2, 0.0, 1.0);
      const Vec3 q{ap[0] - t * ab[0], ap[1] - t * ab[1], ap[2] - t * ab[2]};
      const double dist = length(q);
      const double radius = points_[n - 1].radius + t * (points_[n].radius - points_[n - 1].radius);
      const double d = dist - radius;
      if (d < best.distance) {
        best.distance = d;
        if (dist > 1e-9) {
          best.normal = {q[0] / dist, q[1] / dist, q[2] / dist};
        }
      }
    }
    return best;
  }
  Box bounds() const override { return slab_bounds(-1e30, 1e30); }
  Box slab_bounds(double z0, double z1) const override {
    Box box;
    for (std::size_t n = 1; n < points_.size(); ++n) {
      const Vec3& a = points_[n - 1].p;
      const Vec3& b = points_[n].p;
      const double r = std::max(points_[n - 1].radius, points_[n].radius);
      const Box segment{
          {std::min(a[0], b[0]) - r, std::min(a[1], b[1]) - r, std::min(a[2], b[2]) - r},
          {std::max(a[0], b[0]) + r, std::max(a[1], b[1]) + r, std::max(a[2], b[2]) + r}};
      if (segment.max[2] >= z0 && segment.min[2] <= z1) {
        box.add(segment);
      }
    }
    return box;
  }

 private:
  std::vector<TubePoint> points_;
};

class Offset : public Shape {
 public:
  Offset(ShapePtr shape, double delta) : shape_(std::move(shape)), delta_(delta) {}
  Sample sample(const Vec3& p) const override {
    Sample s = shape_->sample(p);
    s.distance -= delta_;
    return s;
  }
  Box bounds() const override { return shape_->bounds().grown(std::max(0.0, delta_)); }
  Box slab_bounds(double z0, double z1) const override {
    const double grow = std::max(0.0, delta_);
    return shape_->slab_bounds(z0 - grow, z1 + grow).grown(grow);
  }

 private:
  ShapePtr shape_;
  double delta_;
};

enum class Operation { unite, intersect, subtract };

class Combination : public Shape {
 public:
  Combination(Operation operation, ShapePtr a, ShapePtr b)
      : operation_(operation), a_(std::move(a)), b_(std::move(b)) {}
  Sample sample(const Vec3& p) const override {
    const Sample sa = a_->sample(p);
    Sample sb = b_->sample(p);
    switch (operation_) {
      case Operation::unite:
        return sa.distance < sb.distance ? sa : sb;
      case Operation::intersect:
        return sa.distance > sb.distance ? sa : sb;
      case Operation::subtract:
        sb.distance = -sb.distance;
        sb.normal = {-sb.normal[0], -sb.normal[1], -sb.normal[2]};
        return sa.distance > sb.distance ? sa : sb;
    }
    return sa;
  }
  Box bounds() const override { return combine(a_->bounds(), b_->bounds()); }
  Box slab_bounds(double z0, double z1) const override {
    return combine(a_->slab_bounds(z0, z1), b_->slab_bounds(z0, z1));
  }

 private:
  Box combine(Box a, const Box& b) const {
    if (operation_ == Operation::unite) {
      a.add(b);
    } else if (operation_ == Operation::intersect) {
      for (int c = 0; c < 3; ++c) {
        a.min[c] = std::max(a.min[c], b.min[c]);
        a.max[c] = std::min(a.max[c], b.max[c]);
      }
    }
    return a;
  }
  Operation operation_;
  ShapePtr a_, b_;
};

}  // namespace

void Box::add(const Box& other) {
  if (other.empty()) {
    return;
  }
  if (empty()) {
    *this = other;
    return;
  }
  for (int c = 0; c < 3; ++c) {
    min[c] = std::min(min[c], other.min[c]);
    max[c] = std::max(max[c], other.max[c]);
  }
}

Box Box::grown(double margin) const {
  if (empty()) {
    return *this;
  }
  return Box{{min[0] - margin, min[1] - margin, min[2] - margin},
             {max[0] + margin, max[1] + margin, max[2] + margin}};
}

Box Shape::slab_bounds(double z0, double z1) const {
  Box box = bounds();
  if (box.max[2] < z0 || box.min[2] > z1) {
    return Box{};
  }
  return box;
}

ShapePtr ellipsoid(const Vec3& center, const Vec3& radii, double yaw, double taper) {
  return std::make_shared<Ellipsoid>(center, radii, yaw, taper);
}
ShapePtr elliptic_cylinder(double cx, double cy, double rx, double ry, double z0, double z1,
                           double yaw) {
  return std::make_shared<EllipticCylinder>(cx, cy, rx, ry, z0, z1, yaw);
}
ShapePtr torso(double cx, double cy, std::vector<TorsoLevel> profile, double back) {
  return std::make_shared<Torso>(cx, cy, std::move(profile), back);
}
ShapePtr tube(std::vector<TubePoint> points) {
  return std::make_shared<Tube>(std::move(points));
}
ShapePtr offset(ShapePtr shape, double delta) {
  return std::make_shared<Offset>(std::move(shape), delta);
}
ShapePtr unite(ShapePtr a, ShapePtr b) {
  return std::make_shared<Combination>(Operation::unite, std::move(a), std::move(b));
}
ShapePtr intersect(ShapePtr a, ShapePtr b) {
  return std::make_shared<Combination>(Operation::intersect, std::move(a), std::move(b));
}
ShapePtr subtract(ShapePtr a, ShapePtr b) {
  return std::make_shared<Combination>(Operation::subtract, std::move(a), std::move(b));
}

}  // namespace cajal::pipeline::phantom
