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
  if (volume.pixels.empty()) {
    return {};
  }
  const auto [lo, hi] = std::minmax_element(volume.pixels.begin(), volume.pixels.end());
  return {*lo, *hi};
}

}  // namespace cajal::core
