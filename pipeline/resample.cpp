#include "pipeline/resample.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

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
  // Each output row from its four source rows (dk, dj): first the label of each source column
  // where the four rows agree (NaN where they do not), then each output voxel whose two source
  // columns hold the same such label takes it (most of the volume); the others, a thin shell
  // around each structure, are listed and weighed corner by corner. Corners of weight 0 (an axis
  // whose grids coincide, as the slices often do) take no part in agreeing: where the corners of
  // positive weight hold one label it has all the weight, and the weighing gives it too.
  const auto weighed = [](const Tap& t) {
    return std::pair{1.0f - t.w == 0.0f ? t.hi : t.lo, t.w == 0.0f ? t.lo : t.hi};
  };
  const auto& in = volume.geometry.size;
  // Along i the weighed source columns only grow: the output voxels whose two lie in the source
  // columns [c0, c1] are those from first_from[c0] to first_past[c1] (excluded).
  std::vector<std::int64_t> first_from(static_cast<std::size_t>(in[0]));
  std::vector<std::int64_t> first_past(static_cast<std::size_t>(in[0]));
  std::int64_t from = 0;
  std::int64_t past = 0;
  for (std::int64_t c = 0; c < in[0]; ++c) {
    while (from < grid.size[0] && weighed(taps[0][static_cast<std::size_t>(from)]).first < c) {
      ++from;
    }
    while (past < grid.size[0] && weighed(taps[0][static_cast<std::size_t>(past)]).second <= c) {
      ++past;
    }
    first_from[static_cast<std::size_t>(c)] = from;
    first_past[static_cast<std::size_t>(c)] = past;
  }
#pragma omp parallel
  {
    std::vector<float> agreed(static_cast<std::size_t>(in[0]));
    std::vector<std::int64_t> mixed(taps[0].size());
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < grid.size[2]; ++k) {
      const Tap& tk = taps[2][static_cast<std::size_t>(k)];
      for (std::int64_t j = 0; j < grid.size[1]; ++j) {
        const Tap& tj = taps[1][static_cast<std::size_t>(j)];
        float* row =
            out.data() + index_of(out_size, out_begin[0], out_begin[1] + j, out_begin[2] + k);
        // The four source rows of this output row, in the corners' order (dk, dj).
        const std::array<const float*, 4> rows{
            volume.pixels.data() + index_of(in, 0, tj.lo, tk.lo),
            volume.pixels.data() + index_of(in, 0, tj.hi, tk.lo),
            volume.pixels.data() + index_of(in, 0, tj.lo, tk.hi),
            volume.pixels.data() + index_of(in, 0, tj.hi, tk.hi)};
        const auto [j0, j1] = weighed(tj);
        const auto [k0, k1] = weighed(tk);
        const std::array<const float*, 4> weighed_rows{
            volume.pixels.data() + index_of(in, 0, j0, k0),
            volume.pixels.data() + index_of(in, 0, j1, k0),
            volume.pixels.data() + index_of(in, 0, j0, k1),
            volume.pixels.data() + index_of(in, 0, j1, k1)};
        for (std::int64_t c = 0; c < in[0]; ++c) {
          const float one = weighed_rows[0][c];
          const bool agree =
              weighed_rows[1][c] == one && weighed_rows[2][c] == one && weighed_rows[3][c] == one;
          agreed[static_cast<std::size_t>(c)] = agree ? one : NAN;
        }
        // Spans of source columns that agree on one label fill their output voxels; the voxels
        // between spans are listed.
        std::size_t mixed_count = 0;
        std::int64_t done = 0;  // output voxels before this are filled or listed
        for (std::int64_t c0 = 0; c0 < in[0];) {
          const float one = agreed[static_cast<std::size_t>(c0)];
          std::int64_t c1 = c0 + 1;
          while (c1 < in[0] && agreed[static_cast<std::size_t>(c1)] == one) {
            ++c1;
          }
          if (one == one) {  // NaN, where the rows disagree, equals nothing
            const std::int64_t begin = first_from[static_cast<std::size_t>(c0)];
            const std::int64_t end = first_past[static_cast<std::size_t>(c1 - 1)];
            for (; done < begin; ++done) {
              mixed[mixed_count++] = done;
            }
            if (end > begin) {
              std::fill(row + begin, row + end, one);
              done = end;
            }
          }
          c0 = c1;
        }
        for (; done < grid.size[0]; ++done) {
          mixed[mixed_count++] = done;
        }
        // The listed voxels (their corners disagree): the label of largest summed weight, the
        // smaller label on a tie.
        for (std::size_t m = 0; m < mixed_count; ++m) {
          const auto i = static_cast<std::size_t>(mixed[m]);
          const Tap& ti = taps[0][i];
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
          // Each label's weights summed in the corners' order (as adding the other corners' zeros
          // would leave them), under the label's first corner.
          std::array<int, 8> first{};
          std::array<float, 8> sum{};
          for (int b = 0; b < 8; ++b) {
            first[b] = b;
            for (int a = 0; a < b; ++a) {
              if (label[a] == label[b]) {
                first[b] = first[a];
                break;
              }
            }
            // A NaN label (none comes from the network) equals nothing, not even itself.
            sum[first[b]] += label[b] == label[b] ? weight[b] : 0.0f;
          }
          float best = label[0];
          float best_weight = -1;
          for (int a = 0; a < 8; ++a) {
            // (A label's later corners hold 0.)
            if (sum[a] > best_weight || (sum[a] == best_weight && label[a] < best)) {
              best_weight = sum[a];
              best = label[a];
            }
          }
          row[i] = best;
        }
      }
    }
  }
}

}  // namespace cajal::pipeline
