#include "pipeline/resample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

// Output voxel o of `to` along axis c lies at continuous index offset + o * step of `from`.
struct AxisMap {
  double offset = 0;
  double step = 1;
};

std::array<AxisMap, 3> axis_maps(const core::Geometry& from, const core::Geometry& to) {
  for (int i = 0; i < 9; ++i) {
    if (std::abs(from.direction[i] - to.direction[i]) > 1e-6) {
      throw Error("resampling grid direction", "the input's direction (axis-aligned resampling)",
                  "another direction");
    }
  }
  std::array<AxisMap, 3> maps{};
  const core::Vec3 first = from.physical_to_index(to.origin);
  for (int c = 0; c < 3; ++c) {
    maps[c] = {first[c], to.spacing[c] / from.spacing[c]};
  }
  return maps;
}

std::size_t index_of(const core::Index3& size, std::int64_t i, std::int64_t j, std::int64_t k) {
  return static_cast<std::size_t>(i + size[0] * (j + size[1] * k));
}

// Where an output voxel along an axis reads the input: between voxels lo and hi, w of the way to
// hi (clamped at the ends).
struct Tap {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  float w = 0;
};

// The taps of the output voxels 0 .. out_count - 1 along an axis.
std::vector<Tap> linear_taps(std::int64_t in_count, std::int64_t out_count, const AxisMap& map) {
  std::vector<Tap> taps;
  const std::int64_t last = in_count - 1;
  for (std::int64_t o = 0; o < out_count; ++o) {
    const double x =
        std::clamp(map.offset + static_cast<double>(o) * map.step, 0.0, static_cast<double>(last));
    const auto base = std::min(static_cast<std::int64_t>(std::floor(x)), last);
    taps.push_back({base, std::min(base + 1, last), static_cast<float>(x - double(base))});
  }
  return taps;
}

// The pass along i: output row (j, k) from input row row(j, k) (`in[0]` values, each read
// through value()).
template <typename Row, typename Value>
std::vector<float> pass_along_rows(const Row& row, const Value& value, const core::Index3& in,
                                   std::int64_t out_count, const AxisMap& map) {
  const std::vector<Tap> taps = linear_taps(in[0], out_count, map);
  const core::Index3 out{out_count, in[1], in[2]};
  std::vector<float> dst(static_cast<std::size_t>(out[0] * out[1] * out[2]));
  // Planes on the threads of the engine's context (omp_set_num_threads); each writes its own.
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < out[2]; ++k) {
    for (std::int64_t j = 0; j < out[1]; ++j) {
      const float* src = row(j, k);
      float* d = dst.data() + index_of(out, 0, j, k);
      for (std::size_t i = 0; i < taps.size(); ++i) {
        const float va = value(src[taps[i].lo]);
        const float vb = value(src[taps[i].hi]);
        d[i] = va + taps[i].w * (vb - va);
      }
    }
  }
  return dst;
}

// The pass along j (axis 1) or k (axis 2) of `src` (of size `in`): each output row blends two
// whole input rows, a loop the compiler vectorises.
std::vector<float> pass_across_rows(const std::vector<float>& src, const core::Index3& in, int axis,
                                    std::int64_t out_count, const AxisMap& map) {
  const std::vector<Tap> taps = linear_taps(in[axis], out_count, map);
  core::Index3 out = in;
  out[axis] = out_count;
  std::vector<float> dst(static_cast<std::size_t>(out[0] * out[1] * out[2]));
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < out[2]; ++k) {
    for (std::int64_t j = 0; j < out[1]; ++j) {
      const auto o = static_cast<std::size_t>(axis == 1 ? j : k);
      const Tap& t = taps[o];
      const float* a =
          src.data() + (axis == 1 ? index_of(in, 0, t.lo, k) : index_of(in, 0, j, t.lo));
      const float* b =
          src.data() + (axis == 1 ? index_of(in, 0, t.hi, k) : index_of(in, 0, j, t.hi));
      const float w = t.w;
      float* d = dst.data() + index_of(out, 0, j, k);
      for (std::int64_t i = 0; i < out[0]; ++i) {
        d[i] = a[i] + w * (b[i] - a[i]);
      }
    }
  }
  return dst;
}

}  // namespace

core::Geometry resampled_grid(const core::Geometry& geometry, const core::Vec3& spacing) {
  core::Geometry grid = geometry;
  core::Vec3 centre_index{};
  core::Vec3 first_index{};  // of the new grid's voxel 0, in the old grid's index
  for (int c = 0; c < 3; ++c) {
    const double extent = static_cast<double>(geometry.size[c]) * geometry.spacing[c];
    grid.size[c] = std::max<std::int64_t>(1, std::llround(extent / spacing[c]));
    grid.spacing[c] = spacing[c];
    centre_index[c] = (static_cast<double>(geometry.size[c]) - 1.0) / 2.0;
    first_index[c] = centre_index[c] - (static_cast<double>(grid.size[c]) - 1.0) / 2.0 *
                                           spacing[c] / geometry.spacing[c];
  }
  grid.origin = geometry.index_to_physical(first_index);
  return grid;
}

namespace {

// The passes along i, j, k; the first reads the source's rows through row(j, k) (of `size`) and
// each value through value(), each pass's output is freed once the next exists.
template <typename Row, typename Value>
std::vector<float> linear_passes(const Row& row, const Value& value, core::Index3 size,
                                 const std::array<AxisMap, 3>& maps, const core::Index3& out) {
  std::vector<float> pixels = pass_along_rows(row, value, size, out[0], maps[0]);
  for (int axis = 1; axis < 3; ++axis) {
    size[axis - 1] = out[axis - 1];
    pixels = pass_across_rows(pixels, size, axis, out[axis], maps[axis]);
  }
  return pixels;
}

}  // namespace

core::Volume resample_linear(const core::Volume& volume, const core::Geometry& grid) {
  const core::Index3& size = volume.geometry.size;
  return {grid, volume.pixel_type,
          linear_passes(
              [&volume, &size](std::int64_t j, std::int64_t k) {
                return volume.pixels.data() + index_of(size, 0, j, k);
              },
              [](float x) { return x; }, size, axis_maps(volume.geometry, grid), grid.size)};
}

core::Volume resample_linear(const core::Volume& volume, const core::Index3& begin,
                             const core::Geometry& box, const core::Geometry& grid,
                             const ValueMap& map) {
  const core::Index3& size = volume.geometry.size;
  for (int c = 0; c < 3; ++c) {
    CAJAL_CHECK(begin[c] >= 0 && box.size[c] >= 1 && begin[c] + box.size[c] <= size[c])
        << "a box of " << box.size[c] << " at " << begin[c] << " in " << size[c];
  }
  return {grid, core::PixelType::float32,
          linear_passes(
              [&](std::int64_t j, std::int64_t k) {
                return volume.pixels.data() + index_of(size, begin[0], begin[1] + j, begin[2] + k);
              },
              map, box.size, axis_maps(box, grid), grid.size)};
}

core::Volume resample_nearest(const core::Volume& volume, const core::Geometry& grid) {
  const auto maps = axis_maps(volume.geometry, grid);
  std::array<std::vector<std::int64_t>, 3> source;
  for (int c = 0; c < 3; ++c) {
    const std::int64_t last = volume.geometry.size[c] - 1;
    for (std::int64_t o = 0; o < grid.size[c]; ++o) {
      // The small bias makes exact ties (x.5) round up despite rounding error in x.
      const double x = maps[c].offset + static_cast<double>(o) * maps[c].step;
      const auto nearest = static_cast<std::int64_t>(std::floor(x + 0.5 + 1e-9));
      source[c].push_back(std::clamp<std::int64_t>(nearest, 0, last));
    }
  }
  core::Volume result{grid, volume.pixel_type,
                      std::vector<float>(static_cast<std::size_t>(grid.voxel_count()))};
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      std::size_t n = index_of(grid.size, 0, j, k);
      for (std::int64_t i = 0; i < grid.size[0]; ++i, ++n) {
        result.pixels[n] = volume.pixels[index_of(
            volume.geometry.size, source[0][static_cast<std::size_t>(i)],
            source[1][static_cast<std::size_t>(j)], source[2][static_cast<std::size_t>(k)])];
      }
    }
  }
  return result;
}

core::Volume resample_labels_linear(const core::Volume& volume, const core::Geometry& grid) {
  core::Volume result{grid, volume.pixel_type,
                      std::vector<float>(static_cast<std::size_t>(grid.voxel_count()))};
  resample_labels_linear_into(volume, grid, result.pixels, grid.size, {0, 0, 0});
  return result;
}

void resample_labels_linear_into(const core::Volume& volume, const core::Geometry& grid,
                                 std::vector<float>& out, const core::Index3& out_size,
                                 const core::Index3& out_begin) {
  for (int c = 0; c < 3; ++c) {
    CAJAL_CHECK(out_begin[c] >= 0 && out_begin[c] + grid.size[c] <= out_size[c])
        << "a box of " << grid.size[c] << " at " << out_begin[c] << " in " << out_size[c];
  }
  CAJAL_CHECK(static_cast<std::int64_t>(out.size()) == out_size[0] * out_size[1] * out_size[2])
      << "pixels for another grid";
  const auto maps = axis_maps(volume.geometry, grid);
  std::array<std::vector<Tap>, 3> taps;
  for (int c = 0; c < 3; ++c) {
    taps[c] = linear_taps(volume.geometry.size[c], grid.size[c], maps[c]);
  }
  // Output columns in runs that share their two source columns: where the eight source corners
  // of a run hold one label (most of the volume), the run takes it without weights.
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;  // [begin, end) along i
  for (std::size_t i = 0; i < taps[0].size(); ++i) {
    if (i == 0 || taps[0][i].lo != taps[0][i - 1].lo || taps[0][i].hi != taps[0][i - 1].hi) {
      runs.emplace_back(i, i);
    }
    runs.back().second = static_cast<std::int64_t>(i) + 1;
  }
  const auto& in = volume.geometry.size;
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < grid.size[2]; ++k) {
    const Tap& tk = taps[2][static_cast<std::size_t>(k)];
    for (std::int64_t j = 0; j < grid.size[1]; ++j) {
      const Tap& tj = taps[1][static_cast<std::size_t>(j)];
      const std::size_t row_start =
          index_of(out_size, out_begin[0], out_begin[1] + j, out_begin[2] + k);
      // The four source rows of this output row, in the corners' order (dk, dj).
      const std::array<const float*, 4> rows{volume.pixels.data() + index_of(in, 0, tj.lo, tk.lo),
                                             volume.pixels.data() + index_of(in, 0, tj.hi, tk.lo),
                                             volume.pixels.data() + index_of(in, 0, tj.lo, tk.hi),
                                             volume.pixels.data() + index_of(in, 0, tj.hi, tk.hi)};
      for (const auto& [begin, end] : runs) {
        const Tap& first = taps[0][static_cast<std::size_t>(begin)];
        const float one = rows[0][first.lo];
        bool agree = true;
        for (const float* row : rows) {
          agree = agree && row[first.lo] == one && row[first.hi] == one;
        }
        if (agree) {
          std::fill(out.begin() + static_cast<std::ptrdiff_t>(row_start + begin),
                    out.begin() + static_cast<std::ptrdiff_t>(row_start + end), one);
          continue;
        }
        // The eight corners disagree (a thin shell around each structure): the label of largest
        // summed weight, the smaller label on a tie.
        for (std::int64_t i = begin; i < end; ++i) {
          const Tap& ti = taps[0][static_cast<std::size_t>(i)];
          std::array<float, 8> label{};
          std::array<float, 8> weight{};
          int corner = 0;
          for (int dk = 0; dk < 2; ++dk) {
            for (int dj = 0; dj < 2; ++dj) {
              for (int di = 0; di < 2; ++di, ++corner) {
                label[corner] = rows[static_cast<std::size_t>(2 * dk + dj)][di ? ti.hi : ti.lo];
                weight[corner] =
                    (di ? ti.w : 1 - ti.w) * (dj ? tj.w : 1 - tj.w) * (dk ? tk.w : 1 - tk.w);
              }
            }
          }
          float best = label[0];
          float best_weight = -1;
          for (int a = 0; a < 8; ++a) {
            float sum = 0;
            for (int b = 0; b < 8; ++b) {
              sum += label[b] == label[a] ? weight[b] : 0.0f;
            }
            if (sum > best_weight || (sum == best_weight && label[a] < best)) {
              best_weight = sum;
              best = label[a];
            }
          }
          out[row_start + static_cast<std::size_t>(i)] = best;
        }
      }
    }
  }
}

}  // namespace cajal::pipeline
