#include "core/volume.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/error.h"

namespace cajal::core {
namespace {

constexpr std::array<std::pair<PixelType, const char*>, 8> kPixelTypeNames = {{
    {PixelType::uint8, "uint8"},
    {PixelType::int8, "int8"},
    {PixelType::uint16, "uint16"},
    {PixelType::int16, "int16"},
    {PixelType::uint32, "uint32"},
    {PixelType::int32, "int32"},
    {PixelType::float32, "float32"},
    {PixelType::float64, "float64"},
}};

}  // namespace

std::string to_string(PixelType type) {
  for (const auto& [value, name] : kPixelTypeNames) {
    if (value == type) {
      return name;
    }
  }
  CAJAL_CHECK(false) << "unknown PixelType " << static_cast<int>(type);
  return {};
}

PixelType parse_pixel_type(const std::string& name) {
  std::string names;
  for (const auto& [value, known] : kPixelTypeNames) {
    if (name == known) {
      return value;
    }
    names += names.empty() ? known : std::string(", ") + known;
  }
  throw Error("pixel type", "one of " + names, "'" + name + "'");
}

bool is_exact_in_float(PixelType type) {
  return type != PixelType::uint32 && type != PixelType::int32 && type != PixelType::float64;
}

Volume make_volume(const Geometry& geometry, PixelType pixel_type, float value) {
  Volume volume;
  volume.geometry = geometry;
  volume.pixel_type = pixel_type;
  volume.pixels.assign(static_cast<std::size_t>(geometry.voxel_count()), value);
  return volume;
}

IntensityRange intensity_range(const Volume& volume) {
  return intensity_range(volume.pixels.data(), volume.pixels.size());
}

IntensityRange intensity_range(const float* p, std::size_t count) {
  if (count == 0) {
    return {};
  }
  // Sixteen running minima and maxima that the compiler keeps in vector registers
  // (std::minmax_element tracks positions and is not vectorised). `x < lo ? x : lo` skips a NaN
  // as minmax_element does.
  constexpr std::size_t kLanes = 16;
  std::array<float, kLanes> lo;
  std::array<float, kLanes> hi;
  lo.fill(p[0]);
  hi.fill(p[0]);
  std::size_t v = 0;
  for (; v + kLanes <= count; v += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      const float x = p[v + l];
      lo[l] = x < lo[l] ? x : lo[l];
      hi[l] = hi[l] < x ? x : hi[l];
    }
  }
  for (; v < count; ++v) {
    lo[0] = p[v] < lo[0] ? p[v] : lo[0];
    hi[0] = hi[0] < p[v] ? p[v] : hi[0];
  }
  return {*std::min_element(lo.begin(), lo.end()), *std::max_element(hi.begin(), hi.end())};
}

void copy_box(const std::vector<float>& src, const Index3& src_size, const Index3& src_begin,
              std::vector<float>& dst, const Index3& dst_size, const Index3& dst_begin,
              const Index3& box) {
  const auto at = [](const Index3& size, std::int64_t i, std::int64_t j, std::int64_t k) {
    return static_cast<std::ptrdiff_t>(i + size[0] * (j + size[1] * k));
  };
  for (std::int64_t k = 0; k < box[2]; ++k) {
    for (std::int64_t j = 0; j < box[1]; ++j) {
      std::copy_n(src.begin() + at(src_size, src_begin[0], src_begin[1] + j, src_begin[2] + k),
                  box[0],
                  dst.begin() + at(dst_size, dst_begin[0], dst_begin[1] + j, dst_begin[2] + k));
    }
  }
}

}  // namespace cajal::core
