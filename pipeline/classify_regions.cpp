#include "pipeline/classify_regions.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "pipeline/postprocess.h"

namespace cajal::pipeline {
namespace {

// The LPS box around the voxel corners of the index range [lo, hi] (inclusive voxel indices).
struct Box {
  core::Vec3 min{};
  core::Vec3 max{};
};

Box physical_box(const core::Geometry& geometry, const core::Index3& lo, const core::Index3& hi) {
  Box box{{1e300, 1e300, 1e300}, {-1e300, -1e300, -1e300}};
  for (int corner = 0; corner < 8; ++corner) {
    core::Vec3 index{};
    for (int a = 0; a < 3; ++a) {
      index[a] =
          static_cast<double>((corner >> a) & 1 ? hi[a] : lo[a]) + ((corner >> a) & 1 ? 0.5 : -0.5);
    }
    const core::Vec3 point = geometry.index_to_physical(index);
    for (int a = 0; a < 3; ++a) {
      box.min[a] = std::min(box.min[a], point[a]);
      box.max[a] = std::max(box.max[a], point[a]);
    }
  }
  return box;
}

std::string grid_text(const core::Geometry& g) {
  return "size [" + std::to_string(g.size[0]) + "," + std::to_string(g.size[1]) + "," +
         std::to_string(g.size[2]) + "] spacing " + core::to_string(g.spacing) + " origin " +
         core::to_string(g.origin) + " orientation " + core::orientation_code(g.direction);
}

// Voxel index bounds and count of one region of a mask.
struct IndexBox {
  core::Index3 lo{INT64_MAX, INT64_MAX, INT64_MAX};
  core::Index3 hi{-1, -1, -1};
  std::int64_t voxels = 0;
  void add(const core::Index3& v) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], v[a]);
      hi[a] = std::max(hi[a], v[a]);
    }
    ++voxels;
  }
};

core::Index3 index_of(std::size_t v, const core::Index3& size) {
  const auto i = static_cast<std::int64_t>(v);
  return {i % size[0], (i / size[0]) % size[1], i / (size[0] * size[1])};
}

Region box_region(const std::string& id, const core::Geometry& geometry, const IndexBox& index_box,
                  double margin_mm, const models::RunConfig& run) {
  const Box box = physical_box(geometry, index_box.lo, index_box.hi);
  Region region;
  region.id = id;
  region.source = RegionSource::roi;
  for (int a = 0; a < 3; ++a) {
    region.centre_mm[a] = 0.5 * (box.min[a] + box.max[a]);
    region.box_mm[a] = box.max[a] - box.min[a] + 2 * margin_mm;
  }
  region.field_mm = fit_field(region.box_mm, run);
  region.voxels = index_box.voxels;
  region.volume_ml = static_cast<double>(index_box.voxels) * geometry.spacing[0] *
                     geometry.spacing[1] * geometry.spacing[2] / 1000.0;
  return region;
}

// Trilinear value at a continuous index, clamped into the image (nearest border value outside).
float sample(const core::Volume& image, const core::Vec3& index) {
  const core::Index3& size = image.geometry.size;
  std::array<std::int64_t, 3> i0{};
  std::array<double, 3> t{};
  for (int a = 0; a < 3; ++a) {
    const double c = std::clamp(index[a], 0.0, static_cast<double>(size[a] - 1));
    i0[a] = std::min<std::int64_t>(static_cast<std::int64_t>(std::floor(c)),
                                   std::max<std::int64_t>(size[a] - 2, 0));
    t[a] = size[a] > 1 ? c - static_cast<double>(i0[a]) : 0.0;
  }
  double value = 0;
  for (int corner = 0; corner < 8; ++corner) {
    double weight = 1;
    core::Index3 at{};
    for (int a = 0; a < 3; ++a) {
      const bool up = ((corner >> a) & 1) != 0;
      weight *= up ? t[a] : 1 - t[a];
      at[a] = std::min(i0[a] + (up ? 1 : 0), size[a] - 1);
    }
    if (weight != 0) {
      value += weight * image.at(at[0], at[1], at[2]);
    }
  }
  return static_cast<float>(value);
}

void zscore(std::vector<float>& values) {
  double sum = 0;
  double squares = 0;
  for (const float v : values) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(values.size());
  const double mean = sum / n;
  const double std = std::sqrt(std::max(0.0, squares / n - mean * mean));
  const double scale = std > 1e-8 ? 1 / std : 1.0;
  for (float& v : values) {
    v = static_cast<float>((v - mean) * scale);
  }
}

double percentile(std::vector<float> values, double q) {
  const auto n = static_cast<std::ptrdiff_t>(q / 100.0 * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + n, values.end());
  return values[static_cast<std::size_t>(n)];
}

void normalise(std::vector<float>& values, const models::Normalization& norm) {
  if (norm.kind == "ct") {
    const bool clip = norm.clip_max > norm.clip_min;
    for (float& v : values) {
      const double x = clip ? std::clamp<double>(v, norm.clip_min, norm.clip_max) : v;
      v = static_cast<float>((x - norm.mean) / norm.std);
    }
  } else if (norm.kind == "zscore") {
    zscore(values);
  } else if (norm.kind == "percentile") {
    const double low = percentile(values, norm.lower_percentile);
    const double high = percentile(values, norm.upper_percentile);
    for (float& v : values) {
      v = static_cast<float>(std::clamp<double>(v, low, high));
    }
    zscore(values);
  }
}

}  // namespace

std::string to_string(RegionSource source) {
  switch (source) {
    case RegionSource::whole:
      return "whole";
    case RegionSource::center:
      return "center";
    case RegionSource::roi:
      return "roi";
  }
  return "?";
}

core::Vec3 model_field_mm(const models::RunConfig& run) {
  const auto dims = static_cast<std::size_t>(run.spatial_dims);
  if ((dims != 2 && dims != 3) || run.patch_size.size() != dims ||
      run.target_spacing.size() != dims) {
    throw Error("classifier run configuration",
                "spatial_dims 2 or 3 with a patch_size and target_spacing of that many numbers",
                std::to_string(run.spatial_dims) + "D, patch_size of " +
                    std::to_string(run.patch_size.size()) + ", target_spacing of " +
                    std::to_string(run.target_spacing.size()));
  }
  core::Vec3 field{0, 0, 0};
  for (std::size_t a = 0; a < dims; ++a) {  // tensor axes (D,) H, W are z, y, x
    field[dims - 1 - a] = static_cast<double>(run.patch_size[a]) * run.target_spacing[a];
  }
  return field;
}

core::Vec3 fit_field(const core::Vec3& box_mm, const models::RunConfig& run) {
  core::Vec3 field = model_field_mm(run);
  double factor = 1;
  for (int a = 0; a < 3; ++a) {
    if (field[a] > 0) {
      factor = std::max(factor, box_mm[a] / field[a]);
    }
  }
  for (double& f : field) {
    f *= factor;
  }
  return field;
}

Region whole_image_region(const core::Volume& image, const std::string& case_id) {
  const core::Index3& size = image.geometry.size;
  const Box box = physical_box(image.geometry, {0, 0, 0}, {size[0] - 1, size[1] - 1, size[2] - 1});
  Region region;
  region.id = case_id + "/whole";
  region.source = RegionSource::whole;
  for (int a = 0; a < 3; ++a) {
    region.centre_mm[a] = 0.5 * (box.min[a] + box.max[a]);
    region.box_mm[a] = box.max[a] - box.min[a];
  }
  region.field_mm = region.box_mm;
  return region;
}

Region centre_region(const core::Vec3& centre_mm, const core::Vec3& size_mm,
                     const std::string& case_id, const models::RunConfig& run) {
  Region region;
  region.id = case_id + "/center";
  region.source = RegionSource::center;
  region.centre_mm = centre_mm;
  region.box_mm = size_mm;
  region.field_mm = fit_field(size_mm, run);
  return region;
}

void check_same_grid(const core::Volume& image, const core::Volume& mask, const std::string& what) {
  const core::Geometry& a = image.geometry;
  const core::Geometry& b = mask.geometry;
  if (!core::same_grid(a, b)) {
    throw Error(what, "the input's grid: " + grid_text(a), grid_text(b));
  }
}

std::vector<Region> mask_regions(const core::Volume& image, const core::Volume& mask,
                                 const std::string& case_id, const MaskRegionOptions& options,
                                 const models::RunConfig& run) {
  check_same_grid(image, mask, "mask for '" + case_id + "'");
  const core::Geometry& geometry = mask.geometry;
  std::vector<Region> regions;
  if (!options.label) {
    std::map<long, IndexBox> boxes;
    for (std::size_t v = 0; v < mask.pixels.size(); ++v) {
      const long value = std::lround(mask.pixels[v]);
      if (value != 0) {
        boxes[value].add(index_of(v, geometry.size));
      }
    }
    for (const auto& [value, box] : boxes) {
      regions.push_back(box_region(case_id + "/lesion_" + std::to_string(value), geometry, box,
                                   options.margin_mm, run));
    }
    return regions;
  }
  std::vector<std::uint8_t> selected(mask.pixels.size());
  for (std::size_t v = 0; v < mask.pixels.size(); ++v) {
    selected[v] = std::lround(mask.pixels[v]) == *options.label ? 1 : 0;
  }
  const Components components = label_components(selected, geometry.size, Connectivity::full26);
  std::vector<IndexBox> boxes(components.sizes.size());
  for (std::size_t v = 0; v < components.id.size(); ++v) {
    if (components.id[v] > 0) {
      boxes[static_cast<std::size_t>(components.id[v] - 1)].add(index_of(v, geometry.size));
    }
  }
  for (std::size_t k = 0; k < boxes.size(); ++k) {
    regions.push_back(box_region(
        case_id + "/label" + std::to_string(*options.label) + "_" + std::to_string(k + 1), geometry,
        boxes[k], options.margin_mm, run));
  }
  return regions;
}

engine::Tensor crop_region(const core::Volume& image, const Region& region,
                           const models::RunConfig& run) {
  model_field_mm(run);  // checks patch_size and target_spacing
  const bool three_d = run.spatial_dims == 3;
  const std::array<std::int64_t, 3> n{run.patch_size[three_d ? 2 : 1],
                                      run.patch_size[three_d ? 1 : 0],
                                      three_d ? run.patch_size[0] : 1};
  // The index of the first point and the index steps along x, y, z of the sampling grid.
  core::Vec3 first = region.centre_mm;
  core::Vec3 step_mm{};
  for (int a = 0; a < 3; ++a) {
    step_mm[a] = region.field_mm[a] / static_cast<double>(n[a]);
    first[a] -= 0.5 * static_cast<double>(n[a] - 1) * step_mm[a];
  }
  const core::Vec3 index0 = image.geometry.physical_to_index(first);
  std::array<core::Vec3, 3> step{};
  for (int a = 0; a < 3; ++a) {
    core::Vec3 point = first;
    point[a] += step_mm[a];
    const core::Vec3 index = image.geometry.physical_to_index(point);
    for (int b = 0; b < 3; ++b) {
      step[a][b] = index[b] - index0[b];
    }
  }
  std::vector<float> values(static_cast<std::size_t>(n[0] * n[1] * n[2]));
  std::size_t out = 0;
  for (std::int64_t z = 0; z < n[2]; ++z) {
    for (std::int64_t y = 0; y < n[1]; ++y) {
      for (std::int64_t x = 0; x < n[0]; ++x) {
        core::Vec3 index = index0;
        for (int b = 0; b < 3; ++b) {
          index[b] += static_cast<double>(x) * step[0][b] + static_cast<double>(y) * step[1][b] +
                      static_cast<double>(z) * step[2][b];
        }
        values[out++] = sample(image, index);
      }
    }
  }
  normalise(values, run.normalization);
  engine::Dims dims = three_d ? engine::Dims{1, n[2], n[1], n[0]} : engine::Dims{1, n[1], n[0]};
  return engine::Tensor(std::move(dims), std::move(values));
}

}  // namespace cajal::pipeline
