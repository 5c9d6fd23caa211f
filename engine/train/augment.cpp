#include "engine/train/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/train/random.h"

namespace cajal::engine::train {
namespace {

using Index3 = std::array<std::int64_t, 3>;
using Mat3 = std::array<std::array<double, 3>, 3>;

// Spatial axes as (D, H, W); D = 1 for 2D. `first` maps spatial axis 0 to its slot.
struct Grid {
  int spatial = 0;
  int first = 0;
  std::int64_t channels = 0;
  Index3 size{1, 1, 1};
  std::int64_t voxels() const { return size[0] * size[1] * size[2]; }
  std::int64_t at(const Index3& i) const { return (i[0] * size[1] + i[1]) * size[2] + i[2]; }
};

Grid grid_of(const Tensor& image, const Tensor* label) {
  if (image.rank() != 3 && image.rank() != 4) {
    throw Error("augmentation image", "dims [C, H, W] or [C, D, H, W]", to_string(image.dims()));
  }
  Grid g;
  g.spatial = image.rank() - 1;
  g.first = 3 - g.spatial;
  g.channels = image.dim(0);
  const Dims spatial(image.dims().begin() + 1, image.dims().end());
  for (int a = 0; a < g.spatial; ++a)
    g.size[static_cast<std::size_t>(g.first + a)] = spatial[a];
  if (label != nullptr && label->dims() != spatial) {
    throw Error("augmentation label", to_string(spatial), to_string(label->dims()));
  }
  return g;
}

// Copies value at source(o) into o for every voxel o; source gives an in-range index.
template <typename Source>
void permute(Tensor& image, Tensor* label, const Grid& g, Source source) {
  std::vector<std::int64_t> from(static_cast<std::size_t>(g.voxels()));
  Index3 o{};
  for (o[0] = 0; o[0] < g.size[0]; ++o[0]) {
    for (o[1] = 0; o[1] < g.size[1]; ++o[1]) {
      for (o[2] = 0; o[2] < g.size[2]; ++o[2]) {
        from[static_cast<std::size_t>(g.at(o))] = g.at(source(o));
      }
    }
  }
  const auto apply = [&](float* values) {
    const std::vector<float> copy(values, values + g.voxels());
    for (std::size_t i = 0; i < from.size(); ++i)
      values[i] = copy[static_cast<std::size_t>(from[i])];
  };
  for (std::int64_t c = 0; c < g.channels; ++c)
    apply(image.data() + c * g.voxels());
  if (label != nullptr)
    apply(label->data());
}

std::size_t slot(const Grid& g, int axis) {
  if (axis < 0 || axis >= g.spatial) {
    throw Error("augmentation axis", "in [0, " + std::to_string(g.spatial) + ")",
                std::to_string(axis));
  }
  return static_cast<std::size_t>(g.first + axis);
}

// Separable Gaussian smoothing of a field on the grid, replicating the border: each line along
// each axis is copied into a padded buffer and convolved there.
void smooth(std::vector<double>& field, const Grid& g, double sigma) {
  const auto radius = static_cast<std::int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> kernel(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0.0;
  for (std::int64_t k = -radius; k <= radius; ++k) {
    const auto x = static_cast<double>(k);
    sum += kernel[static_cast<std::size_t>(k + radius)] = std::exp(-x * x / (2.0 * sigma * sigma));
  }
  for (auto& k : kernel)
    k /= sum;
  const Index3 strides{g.size[1] * g.size[2], g.size[2], 1};
  std::vector<double> line;
  for (std::size_t axis = static_cast<std::size_t>(g.first); axis < 3; ++axis) {
    const std::int64_t length = g.size[axis];
    const std::int64_t stride = strides[axis];
    line.resize(static_cast<std::size_t>(length + 2 * radius));
    Index3 o{};
    Index3 end = g.size;
    end[axis] = 1;
    for (o[0] = 0; o[0] < end[0]; ++o[0]) {
      for (o[1] = 0; o[1] < end[1]; ++o[1]) {
        for (o[2] = 0; o[2] < end[2]; ++o[2]) {
          double* start = field.data() + g.at(o);
          for (std::int64_t i = -radius; i < length + radius; ++i) {
            line[static_cast<std::size_t>(i + radius)] =
                start[std::clamp(i, std::int64_t{0}, length - 1) * stride];
          }
          for (std::int64_t i = 0; i < length; ++i) {
            double acc = 0.0;
            const double* window = line.data() + i;
            for (std::size_t k = 0; k < kernel.size(); ++k)
              acc += kernel[k] * window[k];
            start[i * stride] = acc;
          }
        }
      }
    }
  }
}

Mat3 multiply(const Mat3& a, const Mat3& b) {
  Mat3 m{};
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      for (std::size_t k = 0; k < 3; ++k)
        m[i][j] += a[i][k] * b[k][j];
    }
  }
  return m;
}

// Rotation by `radians` in the plane of slots (a, b).
Mat3 plane_rotation(std::size_t a, std::size_t b, double radians) {
  Mat3 m{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  m[a][a] = std::cos(radians);
  m[a][b] = -std::sin(radians);
  m[b][a] = std::sin(radians);
  m[b][b] = std::cos(radians);
  return m;
}

double sample_linear(const float* values, const Grid& g, const std::array<double, 3>& q) {
  Index3 base{};
  std::array<double, 3> frac{};
  for (std::size_t k = 0; k < 3; ++k) {
    const double f = std::floor(q[k]);
    base[k] = static_cast<std::int64_t>(f);
    frac[k] = q[k] - f;
  }
  double acc = 0.0;
  for (int corner = 0; corner < 8; ++corner) {
    double w = 1.0;
    Index3 i{};
    bool inside = true;
    for (std::size_t k = 0; k < 3; ++k) {
      const bool up = (corner >> k) & 1;
      w *= up ? frac[k] : 1.0 - frac[k];
      i[k] = base[k] + (up ? 1 : 0);
      inside = inside && i[k] >= 0 && i[k] < g.size[k];
    }
    if (w != 0.0 && inside)
      acc += w * values[g.at(i)];
  }
  return acc;
}

// One resampling of image (linear) and label (nearest) at q(o) = m (o - c) + c + displacement.
void resample(Tensor& image, Tensor* label, const Grid& g, const Mat3& m,
              const std::array<std::vector<double>, 3>* displacement) {
  Tensor out_image(image.dims());
  Tensor out_label = label != nullptr ? Tensor(label->dims()) : Tensor();
  std::array<double, 3> centre{};
  for (std::size_t k = 0; k < 3; ++k)
    centre[k] = static_cast<double>(g.size[k] - 1) / 2.0;
  Index3 o{};
  for (o[0] = 0; o[0] < g.size[0]; ++o[0]) {
    for (o[1] = 0; o[1] < g.size[1]; ++o[1]) {
      for (o[2] = 0; o[2] < g.size[2]; ++o[2]) {
        const auto at = g.at(o);
        std::array<double, 3> q{};
        for (std::size_t i = 0; i < 3; ++i) {
          q[i] = centre[i];
          for (std::size_t j = 0; j < 3; ++j) {
            q[i] += m[i][j] * (static_cast<double>(o[j]) - centre[j]);
          }
          if (displacement != nullptr)
            q[i] += (*displacement)[i][static_cast<std::size_t>(at)];
        }
        for (std::int64_t c = 0; c < g.channels; ++c) {
          out_image.data()[c * g.voxels() + at] =
              static_cast<float>(sample_linear(image.data() + c * g.voxels(), g, q));
        }
        if (label != nullptr) {
          Index3 n{};
          bool inside = true;
          for (std::size_t k = 0; k < 3; ++k) {
            n[k] = static_cast<std::int64_t>(std::floor(q[k] + 0.5));
            inside = inside && n[k] >= 0 && n[k] < g.size[k];
          }
          out_label.data()[at] = inside ? label->data()[g.at(n)] : 0.0f;
        }
      }
    }
  }
  image = std::move(out_image);
  if (label != nullptr)
    *label = std::move(out_label);
}

void require_probability(double p, const char* what) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw Error(std::string("augmentation ") + what, "a probability in [0, 1]", std::to_string(p));
  }
}

void require_range(double lo, double hi, const char* what) {
  if (!(lo <= hi)) {
    throw Error(std::string("augmentation ") + what, "min <= max",
                std::to_string(lo) + " > " + std::to_string(hi));
  }
}

}  // namespace

void validate(const AugmentConfig& c) {
  require_probability(c.flip_probability, "flip probability");
  require_probability(c.rotate90_probability, "rotate90 probability");
  require_probability(c.rotate_probability, "rotation probability");
  require_probability(c.scale_probability, "scale probability");
  require_probability(c.elastic_probability, "elastic probability");
  require_probability(c.intensity_scale_probability, "intensity scale probability");
  require_probability(c.intensity_shift_probability, "intensity shift probability");
  require_probability(c.noise_probability, "noise probability");
  require_range(0.0, c.max_rotation_degrees, "rotation range");
  require_range(c.min_scale, c.max_scale, "scale range");
  if (!(c.min_scale > 0.0)) {
    throw Error("augmentation min scale", "> 0", std::to_string(c.min_scale));
  }
  require_range(0.0, c.elastic_alpha, "elastic alpha");
  if (!(c.elastic_sigma > 0.0)) {
    throw Error("augmentation elastic sigma", "> 0", std::to_string(c.elastic_sigma));
  }
  require_range(c.min_intensity_scale, c.max_intensity_scale, "intensity scale range");
  require_range(0.0, c.max_intensity_shift, "intensity shift range");
  require_range(0.0, c.max_noise_stddev, "noise range");
}

void flip(Tensor& image, Tensor* label, int axis) {
  const auto g = grid_of(image, label);
  const auto k = slot(g, axis);
  permute(image, label, g, [&](Index3 o) {
    o[k] = g.size[k] - 1 - o[k];
    return o;
  });
}

void rotate90(Tensor& image, Tensor* label, int axis_a, int axis_b, int quarter_turns) {
  const auto g = grid_of(image, label);
  const auto a = slot(g, axis_a);
  const auto b = slot(g, axis_b);
  if (a == b || g.size[a] != g.size[b]) {
    throw Error("90-degree rotation plane", "two different axes of equal size",
                "axes " + std::to_string(axis_a) + ", " + std::to_string(axis_b) + " of sizes " +
                    std::to_string(g.size[a]) + ", " + std::to_string(g.size[b]));
  }
  const int turns = ((quarter_turns % 4) + 4) % 4;
  for (int t = 0; t < turns; ++t) {
    permute(image, label, g, [&](Index3 o) {
      const Index3 from = o;
      o[a] = from[b];
      o[b] = g.size[a] - 1 - from[a];
      return o;
    });
  }
}

std::uint64_t augment_seed(std::uint64_t run_seed, std::int64_t epoch, std::int64_t sample) {
  return mix_seed(mix_seed(run_seed, static_cast<std::uint64_t>(epoch)),
                  static_cast<std::uint64_t>(sample));
}

void augment(Tensor& image, Tensor* label, const AugmentConfig& config, std::uint64_t seed) {
  validate(config);
  const auto g = grid_of(image, label);
  Generator rng(seed);
  for (int axis = 0; axis < g.spatial; ++axis) {
    if (rng.chance(config.flip_probability))
      flip(image, label, axis);
  }
  for (int a = 0; a < g.spatial; ++a) {
    for (int b = a + 1; b < g.spatial; ++b) {
      const bool turn = rng.chance(config.rotate90_probability);
      const auto turns = static_cast<int>(rng.below(3)) + 1;
      if (turn && g.size[slot(g, a)] == g.size[slot(g, b)])
        rotate90(image, label, a, b, turns);
    }
  }
  // Small rotations, scaling and elastic deformation in one resampling.
  Mat3 m{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  bool moved = false;
  const double max_radians = config.max_rotation_degrees * std::numbers::pi / 180.0;
  for (std::size_t a = static_cast<std::size_t>(g.first); a < 3; ++a) {
    for (std::size_t b = a + 1; b < 3; ++b) {
      if (rng.chance(config.rotate_probability)) {
        m = multiply(m, plane_rotation(a, b, rng.uniform(-max_radians, max_radians)));
        moved = true;
      }
    }
  }
  if (rng.chance(config.scale_probability)) {
    const double s = rng.uniform(config.min_scale, config.max_scale);
    for (auto& row : m) {
      for (auto& v : row)
        v /= s;
    }
    m[0][0] = g.spatial == 2 ? 1.0 : m[0][0];
    moved = true;
  }
  std::array<std::vector<double>, 3> displacement;
  const bool elastic = rng.chance(config.elastic_probability);
  if (elastic) {
    for (std::size_t k = 0; k < 3; ++k) {
      displacement[k].assign(static_cast<std::size_t>(g.voxels()), 0.0);
      if (static_cast<int>(k) < g.first)
        continue;
      for (auto& v : displacement[k])
        v = rng.uniform(-1.0, 1.0);
      smooth(displacement[k], g, config.elastic_sigma);
      double peak = 0.0;
      for (const double v : displacement[k])
        peak = std::max(peak, std::abs(v));
      if (peak > 0.0) {
        for (auto& v : displacement[k])
          v *= config.elastic_alpha / peak;
      }
    }
  }
  if (moved || elastic)
    resample(image, label, g, m, elastic ? &displacement : nullptr);
  for (std::int64_t c = 0; c < g.channels; ++c) {
    float* values = image.data() + c * g.voxels();
    const double scale = rng.chance(config.intensity_scale_probability)
                             ? rng.uniform(config.min_intensity_scale, config.max_intensity_scale)
                             : 1.0;
    const double shift = rng.chance(config.intensity_shift_probability)
                             ? rng.uniform(-config.max_intensity_shift, config.max_intensity_shift)
                             : 0.0;
    const double noise =
        rng.chance(config.noise_probability) ? rng.uniform(0.0, config.max_noise_stddev) : 0.0;
    for (std::int64_t i = 0; i < g.voxels(); ++i) {
      double v = values[i] * scale + shift;
      if (noise > 0.0)
        v += rng.normal(0.0, noise);
      values[i] = static_cast<float>(v);
    }
  }
}

}  // namespace cajal::engine::train
