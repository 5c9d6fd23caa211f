// A 3D scalar image in patient space: float pixels plus the geometry that places them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/geometry.h"

namespace cajal::core {

// The pixel type a volume was stored with (and is written back as). Pixels are held as float,
// which represents every 8- and 16-bit value exactly; readers refuse 32-bit integers that float
// cannot hold exactly.
enum class PixelType { uint8, int8, uint16, int16, uint32, int32, float32, float64 };

std::string to_string(PixelType type);
// Parses the names that to_string gives; throws Error on anything else.
PixelType parse_pixel_type(const std::string& name);
// Whether every value of `type` survives a round trip through float.
bool is_exact_in_float(PixelType type);

struct IntensityRange {
  float min = 0;
  float max = 0;
};

struct Volume {
  Geometry geometry;
  PixelType pixel_type = PixelType::float32;
  // voxel (i, j, k) at pixels[i + size_i * (j + size_j * k)]
  std::vector<float> pixels;

  float at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return pixels[static_cast<std::size_t>(i + geometry.size[0] * (j + geometry.size[1] * k))];
  }
};

// Builds a volume of `geometry` filled with `value`.
Volume make_volume(const Geometry& geometry, PixelType pixel_type, float value = 0.0f);
// The smallest and largest pixel ({0, 0} when there are none).
IntensityRange intensity_range(const Volume& volume);
IntensityRange intensity_range(const float* pixels, std::size_t count);

// Copies the box [src_begin, src_begin + box) of `src` (a grid of `src_size`, pixels indexed as
// Volume's) to `dst` (of `dst_size`) at `dst_begin`.
void copy_box(const std::vector<float>& src, const Index3& src_size, const Index3& src_begin,
              std::vector<float>& dst, const Index3& dst_size, const Index3& dst_begin,
              const Index3& box);

}  // namespace cajal::core
