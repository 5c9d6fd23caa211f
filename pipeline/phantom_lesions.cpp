#include "pipeline/phantom_lesions.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "pipeline/phantom_random.h"

namespace cajal::pipeline::phantom {
namespace {

constexpr double kPi = 3.141592653589793;
constexpr double kMinDiameter = 5.0;   // mm
constexpr double kMaxDiameter = 40.0;  // mm
constexpr int kAttempts = 200;         // centres tried per lesion, shrinking it every 40

struct OrganChoice {
  int label;
  const char* name;
  int weight;
};
// The liver is the commonest site; lungs and kidneys next.
constexpr OrganChoice kOrgans[] = {{label_liver, "Liver", 3},       {label_spleen, "Spleen", 1},
                                   {label_kidney_l, "Kidney_L", 1}, {label_kidney_r, "Kidney_R", 1},
                                   {label_lung_l, "Lung_L", 1},     {label_lung_r, "Lung_R", 1}};

bool overlap(const Box& a, const Box& b) {
  for (int c = 0; c < 3; ++c) {
    if (a.min[c] > b.max[c] || b.min[c] > a.max[c]) {
      return false;
    }
  }
  return true;
}

Vec3 add(const Vec3& a, const Vec3& b, double scale = 1.0) {
  return {a[0] + scale * b[0], a[1] + scale * b[1], a[2] + scale * b[2]};
}

// 48 directions spread evenly over the sphere (a Fibonacci lattice).
const std::vector<Vec3>& directions() {
  static const std::vector<Vec3> result = [] {
    constexpr int n = 48;
    std::vector<Vec3> d;
    for (int i = 0; i < n; ++i) {
      const double z = 1.0 - (2.0 * i + 1.0) / n;
      const double r = std::sqrt(1.0 - z * z);
      const double phi = i * kPi * (3.0 - std::sqrt(5.0));
      d.push_back({r * std::cos(phi), r * std::sin(phi), z});
    }
    return d;
  }();
  return result;
}

Vec3 random_direction(Rng& rng) {
  const double z = rng.uniform(-1.0, 1.0);
  const double phi = rng.uniform(0.0, 2.0 * kPi);
  const double r = std::sqrt(1.0 - z * z);
  return {r * std::cos(phi), r * std::sin(phi), z};
}

// The part of the organ that labels.nii.gz shows: its shape less every later labelled structure
// of another label that reaches into it (the renderer labels a voxel with the last one).
ShapePtr visible_region(const Anatomy& anatomy, int label, double& hu, Box& bounds) {
  ShapePtr region;
  std::size_t index = 0;
  for (std::size_t s = 0; s < anatomy.structures.size(); ++s) {
    if (anatomy.structures[s].label == label) {
      region = anatomy.structures[s].shape;
      hu = anatomy.structures[s].hu;
      index = s;
    }
  }
  if (!region) {
    return nullptr;
  }
  bounds = region->bounds();
  for (std::size_t s = index + 1; s < anatomy.structures.size(); ++s) {
    const Structure& later = anatomy.structures[s];
    if (later.label != inherit_label && later.label != label &&
        overlap(later.shape->bounds(), bounds)) {
      region = subtract(region, later.shape);
    }
  }
  return region;
}

// The lesion before clipping to its organ, and how far it reaches from its centre.
struct Body {
  ShapePtr shape;
  double reach = 0;
};

Body make_body(Lesion& lesion, Rng& rng) {
  const Vec3& c = lesion.centre;
  ShapePtr shape = ellipsoid(c, lesion.semi_axes, lesion.yaw);
  const double r = lesion.size_mm / 2;
  double reach = r;
  if (lesion.margin == "lobulated") {
    const int lobes = 3 + rng.below(3);
    for (int n = 0; n < lobes; ++n) {
      const double distance = rng.uniform(0.45, 0.55) * r;
      const double radius = 0.95 * r - distance;  // the lobe stays within the longest axis
      shape = unite(
          shape, ellipsoid(add(c, random_direction(rng), distance), Vec3{radius, radius, radius}));
    }
  } else if (lesion.margin == "spiculated") {
    const int spicules = 5 + rng.below(5);
    for (int n = 0; n < spicules; ++n) {
      const Vec3 d = random_direction(rng);
      const double length = rng.uniform(1.2, 1.4) * r;
      reach = std::max(reach, length);
      shape = unite(
          shape, tube({{add(c, d, 0.5 * r), std::max(0.6, 0.12 * r)}, {add(c, d, length), 0.3}}));
    }
  }
  return {shape, reach};
}

// Where a lesion of this reach may sit: inside the grid and the organ, clear of the lesions
// already placed; for an edge lesion, with 10-50% of its surface directions outside the organ.
bool fits(const Lesion& lesion, double reach, const ShapePtr& region, const Box& field,
          double margin, const std::vector<std::pair<Vec3, double>>& placed) {
  const Vec3& c = lesion.centre;
  for (int a = 0; a < 3; ++a) {
    if (c[a] - reach < field.min[a] || c[a] + reach > field.max[a]) {
      return false;
    }
  }
  for (const auto& [other, other_reach] : placed) {
    const double dx = c[0] - other[0], dy = c[1] - other[1], dz = c[2] - other[2];
    if (std::sqrt(dx * dx + dy * dy + dz * dz) < reach + other_reach + margin) {
      return false;
    }
  }
  const double r = lesion.size_mm / 2;
  if (!lesion.touches_organ_edge) {
    return std::all_of(directions().begin(), directions().end(), [&](const Vec3& d) {
      return region->sample(add(c, d, reach + margin)).distance < 0;
    });
  }
  if (region->sample(c).distance >= -0.3 * r) {
    return false;
  }
  const auto outside = std::count_if(directions().begin(), directions().end(), [&](const Vec3& d) {
    return region->sample(add(c, d, r)).distance >= 0;
  });
  const double fraction = static_cast<double>(outside) / static_cast<double>(directions().size());
  return fraction >= 0.1 && fraction <= 0.5;
}

// The structures that draw a lesion, in painting order.
void add_structures(Anatomy& anatomy, const Lesion& lesion, const ShapePtr& raw,
                    const ShapePtr& region, Rng& rng) {
  const std::string name = "lesion " + std::to_string(lesion.id);
  const bool lung = lesion.organ_label == label_lung_l || lesion.organ_label == label_lung_r;
  if (lesion.oedema_mm > 0) {
    const double hu = lung ? rng.uniform(-650.0, -500.0) : lesion.organ_hu - rng.uniform(8.0, 20.0);
    anatomy.structures.push_back(
        {name + " oedema", intersect(offset(raw, lesion.oedema_mm), region), hu, inherit_label});
  }
  anatomy.structures.push_back({name, lesion.body, lesion.hu, inherit_label});
  if (lesion.lesion_class == LesionClass::benign) {
    return;  // homogeneous
  }
  const double r_min = std::min({lesion.semi_axes[0], lesion.semi_axes[1], lesion.semi_axes[2]});
  const int blobs = 6 + rng.below(5);
  for (int n = 0; n < blobs; ++n) {
    const Vec3 p = add(lesion.centre, random_direction(rng), rng.uniform(0.0, 0.6) * r_min);
    const double radius = rng.uniform(0.15, 0.3) * r_min;
    anatomy.structures.push_back({name + " texture",
                                  intersect(ellipsoid(p, {radius, radius, radius}), lesion.body),
                                  lesion.hu + rng.normal(0.0, 20.0), inherit_label});
  }
  if (lesion.necrotic_core) {
    const double scale = rng.uniform(0.4, 0.55);
    const Vec3 axes{scale * lesion.semi_axes[0], scale * lesion.semi_axes[1],
                    scale * lesion.semi_axes[2]};
    anatomy.structures.push_back(
        {name + " necrosis", intersect(ellipsoid(lesion.centre, axes, lesion.yaw), lesion.body),
         rng.uniform(5.0, 20.0), inherit_label});
  }
}

double snap(double value, double origin, double spacing) {
  return origin + std::round((value - origin) / spacing) * spacing;
}

}  // namespace

const char* lesion_class_name(LesionClass lesion_class) {
  return lesion_class == LesionClass::malignant ? "malignant" : "benign";
}

std::vector<Lesion> add_lesions(Anatomy& anatomy, const core::Geometry& grid, std::uint64_t seed) {
  Rng rng(seed);
  Box field;
  for (int a = 0; a < 3; ++a) {
    field.min[a] = grid.origin[a];
    field.max[a] = grid.origin[a] + static_cast<double>(grid.size[a] - 1) * grid.spacing[a];
  }
  const double margin = std::max({grid.spacing[0], grid.spacing[1], grid.spacing[2]}) + 1.0;
  int total_weight = 0;
  for (const OrganChoice& organ : kOrgans) {
    total_weight += organ.weight;
  }
  std::vector<Lesion> lesions;
  std::vector<std::pair<Vec3, double>> placed;  // centre and reach (with oedema)
  const int count = 1 + rng.below(4);
  // A lesion that finds no room is drawn again (another organ, size and class), a few times.
  for (int draws = 0; static_cast<int>(lesions.size()) < count && draws < 4 * count; ++draws) {
    int pick = rng.below(total_weight);
    const OrganChoice* organ = kOrgans;
    while (pick >= organ->weight) {
      pick -= organ->weight;
      ++organ;
    }
    Lesion lesion;
    lesion.organ = organ->name;
    lesion.organ_label = organ->label;
    lesion.lesion_class = rng.uniform() < 0.5 ? LesionClass::malignant : LesionClass::benign;
    const bool malignant = lesion.lesion_class == LesionClass::malignant;
    lesion.touches_organ_edge = rng.uniform() < 0.3;
    double diameter = kMinDiameter * std::pow(kMaxDiameter / kMinDiameter, rng.uniform());
    const double flattest = malignant ? 0.75 : 0.7;
    const int longest = rng.below(3);
    std::array<double, 3> shape{};
    for (int a = 0; a < 3; ++a) {
      shape[a] = a == longest ? 1.0 : rng.uniform(flattest, malignant ? 0.95 : 1.0);
    }
    lesion.yaw = rng.uniform(0.0, kPi);
    lesion.margin = malignant ? (rng.uniform() < 0.5 ? "lobulated" : "spiculated") : "smooth";
    lesion.oedema_mm = malignant ? rng.uniform(2.0, 6.0) : 0.0;
    const bool lung = organ->label == label_lung_l || organ->label == label_lung_r;
    const double contrast = rng.uniform(15.0, 60.0) * (rng.uniform() < 0.7 ? -1.0 : 1.0);
    const std::uint64_t shape_seed = rng.next();
    Box bounds;
    const ShapePtr region = visible_region(anatomy, organ->label, lesion.organ_hu, bounds);
    if (!region) {
      continue;
    }
    lesion.hu = lung ? rng.uniform(malignant ? 20.0 : 0.0, 60.0) : lesion.organ_hu + contrast;
    bool found = false;
    Body body;
    for (int attempt = 0; attempt < kAttempts && !found; ++attempt) {
      if (attempt > 0 && attempt % 40 == 0) {
        diameter = std::max(kMinDiameter, 0.75 * diameter);
      }
      lesion.size_mm = diameter;
      for (int a = 0; a < 3; ++a) {
        lesion.semi_axes[a] = 0.5 * diameter * shape[a];
        lesion.centre[a] = snap(rng.uniform(std::max(bounds.min[a], field.min[a]),
                                            std::min(bounds.max[a], field.max[a])),
                                grid.origin[a], grid.spacing[a]);
      }
      Rng shape_rng(shape_seed);
      body = make_body(lesion, shape_rng);
      found = fits(lesion, body.reach + lesion.oedema_mm, region, field, margin, placed);
    }
    if (!found) {
      continue;
    }
    lesion.necrotic_core = malignant && lesion.size_mm >= 10.0;
    lesion.id = static_cast<int>(lesions.size()) + 1;
    lesion.body = intersect(body.shape, region);
    Rng shape_rng(shape_seed);
    make_body(lesion, shape_rng);  // the same draws, so the texture draws follow them
    add_structures(anatomy, lesion, body.shape, region, shape_rng);
    placed.emplace_back(lesion.centre, body.reach + lesion.oedema_mm);
    lesions.push_back(std::move(lesion));
  }
  return lesions;
}

std::vector<std::uint8_t> rasterise_lesions(const std::vector<Lesion>& lesions,
                                            const core::Geometry& grid) {
  std::vector<std::uint8_t> labels(static_cast<std::size_t>(grid.voxel_count()), 0);
  for (const Lesion& lesion : lesions) {
    const Box box = lesion.body->bounds();
    std::array<std::int64_t, 3> first{};
    std::array<std::int64_t, 3> last{};
    for (int a = 0; a < 3; ++a) {
      first[a] = std::max<std::int64_t>(
          0, static_cast<std::int64_t>(std::ceil((box.min[a] - grid.origin[a]) / grid.spacing[a])));
      last[a] = std::min<std::int64_t>(
          grid.size[a] - 1,
          static_cast<std::int64_t>(std::floor((box.max[a] - grid.origin[a]) / grid.spacing[a])));
    }
    for (std::int64_t k = first[2]; k <= last[2]; ++k) {
      for (std::int64_t j = first[1]; j <= last[1]; ++j) {
        for (std::int64_t i = first[0]; i <= last[0]; ++i) {
          const Vec3 p{grid.origin[0] + static_cast<double>(i) * grid.spacing[0],
                       grid.origin[1] + static_cast<double>(j) * grid.spacing[1],
                       grid.origin[2] + static_cast<double>(k) * grid.spacing[2]};
          if (lesion.body->sample(p).distance < 0) {
            labels[static_cast<std::size_t>(i + grid.size[0] * (j + grid.size[1] * k))] =
                static_cast<std::uint8_t>(lesion.id);
          }
        }
      }
    }
  }
  return labels;
}

}  // namespace cajal::pipeline::phantom
