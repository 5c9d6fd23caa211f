#include "pipeline/phantom_render.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "pipeline/phantom_random.h"

namespace cajal::pipeline::phantom {
namespace {

// 65536 standard normal variates, made once from a fixed seed: a table lookup per voxel is
// several times faster than Box-Muller, and a 16-bit index is plenty for image noise.
const std::vector<float>& normal_table() {
  static const std::vector<float> table = [] {
    std::vector<float> values(1 << 16);
    Rng rng(0x6a09e667f3bcc908ULL);
    for (float& value : values) {
      value = static_cast<float>(rng.normal());
    }
    return values;
  }();
  return table;
}

void render_slice(const Anatomy& anatomy, const core::Geometry& grid, const RenderOptions& options,
                  std::int64_t k, std::vector<float>& hu, std::uint8_t* labels, std::int16_t* out) {
  const std::int64_t nx = grid.size[0], ny = grid.size[1];
  const double sx = grid.spacing[0], sy = grid.spacing[1], sz = grid.spacing[2];
  const double z = grid.origin[2] + static_cast<double>(k) * sz;
  std::fill(hu.begin(), hu.end(), -1000.0f);
  std::fill(labels, labels + nx * ny, std::uint8_t{0});
  const double reach = sx + sy + sz;  // no voxel is touched by a surface farther than this
  for (const Structure& structure : anatomy.structures) {
    const Box box = structure.shape->slab_bounds(z - 0.5 * sz, z + 0.5 * sz).grown(reach);
    if (box.empty()) {
      continue;
    }
    const auto first = [](double lo, double origin, double spacing) {
      return static_cast<std::int64_t>(std::max(0.0, std::ceil((lo - origin) / spacing)));
    };
    const auto last = [](double hi, double origin, double spacing, std::int64_t n) {
      return std::min(n - 1, static_cast<std::int64_t>(std::floor((hi - origin) / spacing)));
    };
    const std::int64_t i0 = first(box.min[0], grid.origin[0], sx);
    const std::int64_t i1 = last(box.max[0], grid.origin[0], sx, nx);
    const std::int64_t j0 = first(box.min[1], grid.origin[1], sy);
    const std::int64_t j1 = last(box.max[1], grid.origin[1], sy, ny);
    const float value = static_cast<float>(structure.hu);
    const std::uint8_t label = static_cast<std::uint8_t>(structure.label);
    const bool labelled = structure.label != inherit_label;
    for (std::int64_t j = j0; j <= j1; ++j) {
      const double y = grid.origin[1] + static_cast<double>(j) * sy;
      float* row = hu.data() + nx * j;
      std::uint8_t* row_labels = labels + nx * j;
      for (std::int64_t i = i0; i <= i1; ++i) {
        const Vec3 p{grid.origin[0] + static_cast<double>(i) * sx, y, z};
        const Sample s = structure.shape->sample(p);
        // Far from the surface the next pixels along the row are on the same side: half the
        // distance is a safe bound for the approximate distances of the shapes.
        const std::int64_t same =
            std::min(i1 - i, static_cast<std::int64_t>((0.5 * std::abs(s.distance) - reach) / sx));
        if (s.distance >= 0.5 * reach) {
          i += std::max<std::int64_t>(same, 0);
          continue;
        }
        if (same > 0 && s.distance < 0.0) {
          for (std::int64_t n = i; n <= i + same; ++n) {
            row[n] = value;
            if (labelled) {
              row_labels[n] = label;
            }
          }
          i += same;
          continue;
        }
        const double width =
            std::abs(s.normal[0]) * sx + std::abs(s.normal[1]) * sy + std::abs(s.normal[2]) * sz;
        const double fraction = std::clamp(0.5 - s.distance / width, 0.0, 1.0);
        row[i] += static_cast<float>(fraction) * (value - row[i]);
        if (s.distance < 0.0 && labelled) {
          row_labels[i] = label;
        }
      }
    }
  }
  const std::vector<float>& table = normal_table();
  Rng rng(hash_combine(options.noise_seed, static_cast<std::uint64_t>(k)));
  const float sigma = static_cast<float>(options.noise_sigma);
  std::uint64_t bits = 0;
  for (std::int64_t n = 0; n < nx * ny; ++n) {
    if (n % 4 == 0) {
      bits = rng.next();
    }
    const float noisy = hu[static_cast<std::size_t>(n)] + sigma * table[bits & 0xffff];
    bits >>= 16;
    out[n] = static_cast<std::int16_t>(std::lrint(std::clamp(noisy, -1024.0f, 3071.0f)));
  }
}

}  // namespace

Rendered render(const Anatomy& anatomy, const core::Geometry& grid, const RenderOptions& options) {
  CAJAL_CHECK(grid.direction == (core::Mat3{1, 0, 0, 0, 1, 0, 0, 0, 1}))
      << "the phantom renders on an identity-direction grid";
  const std::int64_t slice = grid.size[0] * grid.size[1];
  Rendered rendered;
  rendered.hu.resize(static_cast<std::size_t>(grid.voxel_count()));
  rendered.labels.resize(static_cast<std::size_t>(grid.voxel_count()));
  normal_table();  // made before the threads start
  const int threads = static_cast<int>(std::clamp<std::int64_t>(options.threads, 1, grid.size[2]));
  const auto work = [&](int t) {
    std::vector<float> hu(static_cast<std::size_t>(slice));
    for (std::int64_t k = t; k < grid.size[2]; k += threads) {
      render_slice(anatomy, grid, options, k, hu, rendered.labels.data() + k * slice,
                   rendered.hu.data() + k * slice);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back(work, t);
  }
  work(0);
  for (std::thread& thread : pool) {
    thread.join();
  }
  return rendered;
}

}  // namespace cajal::pipeline::phantom
