// The reference adult is laid out in millimetres with the body's axis at x = y = 0 and z = 0 at
// the lower poles of the kidneys (LPS: +x patient's left, +y posterior, +z superior). Each case
// scales and moves it into its field of view and jitters every organ's size and position.
#include "pipeline/phantom_anatomy.h"

#include <algorithm>
#include <cmath>

#include "pipeline/phantom_random.h"
#include "pipeline/phantom_tissue.h"

namespace cajal::pipeline::phantom {
namespace {

constexpr double pi = 3.14159265358979323846;
double degrees(double d) {
  return d * pi / 180.0;
}

// Reference millimetres to the case's physical millimetres.
struct Frame {
  Vec3 origin;  // physical point of reference (0, 0, 0)
  Vec3 scale;
  Vec3 point(double x, double y, double z) const {
    return {origin[0] + scale[0] * x, origin[1] + scale[1] * y, origin[2] + scale[2] * z};
  }
  Vec3 radii(double x, double y, double z) const {
    return {scale[0] * x, scale[1] * y, scale[2] * z};
  }
  double in_plane(double r) const { return r * 0.5 * (scale[0] + scale[1]); }
  double ref_z(double physical_z) const { return (physical_z - origin[2]) / scale[2]; }
};

class Builder {
 public:
  Builder(const Frame& frame, Rng& rng) : f_(frame), rng_(rng) {}

  // A reference position jittered by `sd` mm in each direction, in physical space.
  Vec3 at(double x, double y, double z, double sd = 4.0) {
    return f_.point(x + rng_.normal(0, sd), y + rng_.normal(0, sd), z + rng_.normal(0, sd));
  }
  // Reference semi-axes varied by up to +-`rel`, in physical space.
  Vec3 size(double x, double y, double z, double rel = 0.1) {
    return f_.radii(x * vary(rel), y * vary(rel), z * vary(rel));
  }
  double vary(double rel) { return rng_.uniform(1.0 - rel, 1.0 + rel); }
  double yaw(double deg, double sd_deg = 6.0) { return degrees(deg + rng_.normal(0, sd_deg)); }
  void add(std::string name, ShapePtr shape, Tissue tissue, int label) {
    anatomy.structures.push_back(
        {std::move(name), std::move(shape), tissue_hu(tissue) + rng_.normal(0, 3.0), label});
  }
  const Frame& frame() const { return f_; }
  Rng& rng() { return rng_; }
  Anatomy anatomy;

 private:
  const Frame& f_;
  Rng& rng_;
};

Frame place_in_grid(const core::Geometry& grid, Rng& rng) {
  Vec3 fov{}, centre{};
  for (int c = 0; c < 3; ++c) {
    fov[c] = static_cast<double>(grid.size[c]) * grid.spacing[c];
    centre[c] = grid.origin[c] + 0.5 * static_cast<double>(grid.size[c] - 1) * grid.spacing[c];
  }
  const double body_rx = 165.0 * rng.uniform(0.88, 1.12);
  const double body_ry = 110.0 * rng.uniform(0.88, 1.12);
  // The body must fit in the field of view with a margin; small grids get a small torso.
  const double fit =
      std::min({1.0, 0.9 * fov[0] / (2.0 * body_rx), 0.9 * fov[1] / (2.2 * body_ry)});
  Frame frame;
  frame.scale = {body_rx / 165.0 * fit, body_ry / 110.0 * fit, 0.0};
  // The organs span reference z from -20 to 350.
  const double span = 370.0;
  const double sz = rng.uniform(0.9, 1.08);
  // A torso shrunk to fit a small field of view is shrunk along z alike.
  const double z_wanted = sz * std::min(1.0, fit * std::max(body_rx / 165.0, body_ry / 110.0));
  frame.scale[2] = std::min(z_wanted, 0.98 * fov[2] / span);
  const double slack_z = std::max(0.0, 0.5 * (fov[2] - span * frame.scale[2]));
  const double slack_x = std::max(0.0, 0.45 * fov[0] - body_rx * fit);
  const double slack_y = std::max(0.0, 0.45 * fov[1] - 1.1 * body_ry * fit);
  frame.origin = {centre[0] + rng.uniform(-0.5, 0.5) * std::min(20.0, slack_x),
                  centre[1] + rng.uniform(-0.5, 0.5) * std::min(20.0, slack_y),
                  centre[2] - 165.0 * frame.scale[2] + rng.uniform(-0.8, 0.8) * slack_z};
  return frame;
}

void add_body(Builder& b, ShapePtr& cavity) {
  const Frame& f = b.frame();
  const double x = 165.0 * f.scale[0], y = 110.0 * f.scale[1];  // rx, ry after fitting
  const double z0 = f.origin[2];
  const double sz = f.scale[2];
  std::vector<TorsoLevel> profile{{z0 + 100 * sz, 0.97 * x, 1.05 * y},
                                  {z0 + 170 * sz, x, y},
                                  {z0 + 300 * sz, 0.98 * x, 0.95 * y},
                                  {z0 + 350 * sz, 0.42 * x, 0.6 * y}};
  ShapePtr body = torso(f.origin[0], f.origin[1], profile, 0.9);
  const double fat = f.in_plane(b.rng().uniform(6.0, 28.0));
  const double muscle = f.in_plane(b.rng().uniform(8.0, 14.0));
  b.add("body", body, Tissue::fat, label_external);
  b.add("muscle wall", offset(body, -fat), Tissue::muscle, label_external);
  cavity = offset(body, -fat - muscle);
  b.add("body cavity", cavity, Tissue::visceral_fat, label_external);
}

// Vessels branching from the hilum through a lung: blood in the image, lung in the labels.
void add_lung_vessels(Builder& b, const ShapePtr& lung, const Vec3& hilum, double side) {
  struct Branch {
    Vec3 start;
    Vec3 direction;
    double radius;
    int depth;
  };
  Rng& rng = b.rng();
  std::vector<Branch> stack;
  for (int root = 0; root < 9; ++root) {
    const double up = (root - 4) * 0.35;
    stack.push_back({hilum, {side * 0.8, rng.normal(0, 0.4), up}, b.frame().in_plane(5.0), 0});
  }
  while (!stack.empty()) {
    const Branch branch = stack.back();
    stack.pop_back();
    Vec3 d = branch.direction;
    const double norm = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    const double len = b.frame().in_plane(rng.uniform(18.0, 32.0)) * (1.0 - 0.08 * branch.depth);
    const Vec3 end{branch.start[0] + len * d[0] / norm, branch.start[1] + len * d[1] / norm,
                   branch.start[2] + len * d[2] / norm};
    // Roots start at the hilum, in the mediastinum; branches stay inside the lung.
    if (branch.depth > 0 && lung->sample(end).distance > -branch.radius) {
      continue;
    }
    const double end_radius = branch.radius * 0.8;
    b.add("lung vessel", tube({{branch.start, branch.radius}, {end, end_radius}}), Tissue::blood,
          inherit_label);
    if (branch.depth >= 7 || end_radius < 0.8) {
      continue;
    }
    for (int child = 0; child < 2; ++child) {
      stack.push_back({end,
                       {d[0] / norm + rng.normal(0, 0.45), d[1] / norm + rng.normal(0, 0.45),
                        d[2] / norm + rng.normal(0, 0.45)},
                       end_radius * 0.85,
                       branch.depth + 1});
    }
  }
}

void add_thorax(Builder& b, const ShapePtr& inside) {
  const Frame& f = b.frame();
  const ShapePtr lung_r =
      intersect(ellipsoid(b.at(-72, 0, 210), b.size(58, 68, 115), b.yaw(0), -0.25), inside);
  const ShapePtr lung_l =
      intersect(ellipsoid(b.at(75, 0, 205), b.size(55, 68, 110), b.yaw(0), -0.25), inside);
  b.add("right lung", lung_r, Tissue::lung, label_lung_r);
  b.add("left lung", lung_l, Tissue::lung, label_lung_l);
  add_lung_vessels(b, lung_r, f.point(-30, -2, 205), -1.0);
  add_lung_vessels(b, lung_l, f.point(33, -2, 200), 1.0);
  const double r = f.in_plane(1.0);
  const ShapePtr airway = tube({{f.point(0, -15, 450), 10 * r},
                                {f.point(0, -15, 245), 10 * r},
                                {f.point(-32, -5, 212), 7.5 * r}});
  const ShapePtr left_bronchus =
      tube({{f.point(0, -15, 245), 9 * r}, {f.point(36, -5, 208), 7 * r}});
  b.add("airway wall", unite(airway, left_bronchus), Tissue::soft_tissue, label_external);
  b.add("airway lumen", offset(unite(airway, left_bronchus), -2.5 * r), Tissue::air,
        label_external);
  b.add("heart", intersect(ellipsoid(b.at(22, -38, 150), b.size(52, 38, 55), b.yaw(-30)), inside),
        Tissue::heart, label_heart);
}

void add_abdomen(Builder& b, const ShapePtr& inside) {
  b.add("bowel", intersect(ellipsoid(b.at(0, -45, 20), b.size(105, 50, 75)), inside), Tissue::bowel,
        label_external);
  for (double side : {-1.0, 1.0}) {
    b.add("psoas",
          elliptic_cylinder(b.frame().point(side * 45, 35, 0)[0], b.frame().point(0, 35, 0)[1],
                            b.frame().in_plane(16), b.frame().in_plane(18), -1e9,
                            b.frame().point(0, 0, 60)[2]),
          Tissue::muscle, label_external);
  }
  const ShapePtr liver = unite(ellipsoid(b.at(-60, -5, 95), b.size(85, 80, 70), b.yaw(15)),
                               ellipsoid(b.at(15, -45, 120), b.size(60, 30, 32), b.yaw(-15)));
  b.add("liver", intersect(liver, inside), Tissue::liver, label_liver);
  b.add("stomach", intersect(ellipsoid(b.at(55, -30, 110), b.size(42, 35, 40)), inside),
        Tissue::stomach, label_external);
  b.add("spleen", intersect(ellipsoid(b.at(95, 45, 125), b.size(28, 55, 45), b.yaw(45)), inside),
        Tissue::spleen, label_spleen);
  for (double side : {1.0, -1.0}) {
    const double z = side > 0 ? 80 : 62;  // the right kidney sits lower, under the liver
    const ShapePtr kidney = ellipsoid(b.at(side * 62, 48, z), b.size(25, 22, 55), b.yaw(side * 30));
    const ShapePtr sinus = ellipsoid(b.at(side * 42, 40, z, 1.0), b.size(12, 10, 22));
    b.add(side > 0 ? "left kidney" : "right kidney", intersect(subtract(kidney, sinus), inside),
          Tissue::kidney, side > 0 ? label_kidney_l : label_kidney_r);
  }
}

void add_vessels_and_oesophagus(Builder& b) {
  const Frame& f = b.frame();
  const double r = f.in_plane(b.vary(0.1));
  const struct {
    double x, y, z, radius;
  } aorta[] = {{5, -30, 175, 13},   {-2, -38, 228, 14}, {6, -40, 252, 13}, {24, -25, 262, 12},
               {33, -2, 254, 11.5}, {34, 20, 232, 11},  {34, 22, 160, 11}, {28, 15, 110, 10.5},
               {18, 5, 70, 10},     {14, 5, 0, 9.5},    {12, 5, -400, 9}};
  std::vector<TubePoint> points;
  for (const auto& p : aorta) {
    points.push_back({b.at(p.x, p.y, p.z, 1.5), p.radius * r});
  }
  b.add("aorta", tube(points), Tissue::blood, label_aorta);
  const double ro = f.in_plane(7.5 * b.vary(0.1));
  const struct {
    double x, y, z;
  } oesophagus[] = {{-2, 8, 450}, {-1, 8, 300},   {2, 12, 240},  {5, 12, 180},
                    {9, 6, 145},  {22, -12, 118}, {40, -25, 112}};
  points.clear();
  for (const auto& p : oesophagus) {
    points.push_back({b.at(p.x, p.y, p.z, 1.0), ro});
  }
  b.add("oesophagus", tube(points), Tissue::soft_tissue, label_esophagus);
}

void add_spine(Builder& b) {
  const Frame& f = b.frame();
  const auto x = [&](double v) { return f.point(v, 0, 0)[0]; };
  const auto y = [&](double v) { return f.point(0, v, 0)[1]; };
  const auto r = [&](double v) { return f.in_plane(v); };
  for (double side : {-1.0, 1.0}) {
    b.add("paraspinal muscle", elliptic_cylinder(x(side * 38), y(75), r(26), r(18), -1e9, 1e9),
          Tissue::muscle, label_external);
  }
  b.add("discs", elliptic_cylinder(x(0), y(40), r(21), r(17), -1e9, 1e9), Tissue::disc,
        label_external);
  const double period = 28.0 * f.scale[2] * b.vary(0.05);
  const double cortex = r(1.6);
  const Vec3 lo = f.point(0, 0, -600), hi = f.point(0, 0, 700);
  for (double z = lo[2]; z < hi[2]; z += period) {
    const double top = z + 0.78 * period;
    const ShapePtr body = elliptic_cylinder(x(0), y(40), r(22), r(18), z, top);
    const ShapePtr ring = subtract(elliptic_cylinder(x(0), y(72), r(19), r(15), z, top),
                                   elliptic_cylinder(x(0), y(70), r(10), r(9), z - 1, top + 1));
    const double mid = 0.5 * (z + top);
    const ShapePtr processes =
        unite(elliptic_cylinder(x(0), y(84), r(4), r(8), z + 0.1 * period, top),
              elliptic_cylinder(x(0), y(68), r(38), r(5), mid - 0.2 * period, mid + 0.2 * period));
    const ShapePtr arch = unite(ring, processes);
    b.add("vertebral body", body, Tissue::cortical_bone, label_external);
    b.add("vertebral marrow", offset(body, -cortex), Tissue::marrow, inherit_label);
    b.add("vertebral arch", arch, Tissue::cortical_bone, label_external);
    b.add("arch marrow", offset(arch, -cortex), Tissue::marrow, inherit_label);
  }
  b.add("spinal canal", elliptic_cylinder(x(0), y(70), r(10), r(9), -1e9, 1e9), Tissue::csf,
        label_external);
  b.add("spinal cord",
        elliptic_cylinder(x(0), y(69), r(5.5), r(4.5), f.point(0, 0, 25)[2] + 0.0, 1e9),
        Tissue::spinal_cord, label_spinal_cord);
}

}  // namespace

Anatomy make_anatomy(const core::Geometry& grid, std::uint64_t seed) {
  Rng rng(seed);
  const Frame frame = place_in_grid(grid, rng);
  Builder b(frame, rng);
  ShapePtr cavity;
  add_body(b, cavity);
  const ShapePtr inside = offset(cavity, -1.0);
  add_thorax(b, inside);
  add_abdomen(b, inside);
  add_vessels_and_oesophagus(b);
  add_spine(b);
  return std::move(b.anatomy);
}

}  // namespace cajal::pipeline::phantom
