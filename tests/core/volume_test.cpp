#include "core/volume.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace cajal::core {
namespace {

TEST(PixelType, NamesRoundTrip) {
  for (PixelType type :
       {PixelType::uint8, PixelType::int8, PixelType::uint16, PixelType::int16, PixelType::uint32,
        PixelType::int32, PixelType::float32, PixelType::float64}) {
    EXPECT_EQ(parse_pixel_type(to_string(type)), type);
  }
}

TEST(PixelType, UnknownNameIsAnErrorListingTheKnownOnes) {
  try {
    parse_pixel_type("int12");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected one of uint8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("got 'int12'"), std::string::npos) << e.what();
  }
}

TEST(Volume, AtIndexesIFastestThenJThenK) {
  Geometry g;
  g.size = {2, 3, 4};
  Volume v = make_volume(g, PixelType::int16);
  v.pixels[1 + 2 * (2 + 3 * 3)] = 7;
  EXPECT_EQ(v.at(1, 2, 3), 7);
  const IntensityRange range = intensity_range(v);
  EXPECT_EQ(range.min, 0);
  EXPECT_EQ(range.max, 7);
}

TEST(Volume, IntensityRangeFindsExtremesInEveryLaneAndTheTail) {
  Geometry g;
  g.size = {7, 5, 3};  // 105 voxels: six blocks of sixteen and a tail of nine
  Volume v = make_volume(g, PixelType::float32);
  for (std::size_t at = 0; at < v.pixels.size(); ++at) {
    std::fill(v.pixels.begin(), v.pixels.end(), 1.5f);
    v.pixels[at] = -3.25f;
    v.pixels[v.pixels.size() - 1 - at] = 8.0f;
    if (at == v.pixels.size() - 1 - at) {
      continue;  // the middle voxel holds only the maximum
    }
    const IntensityRange range = intensity_range(v);
    EXPECT_EQ(range.min, -3.25f) << "minimum at " << at;
    EXPECT_EQ(range.max, 8.0f) << "maximum at " << v.pixels.size() - 1 - at;
  }
  v.pixels.assign(v.pixels.size(), -1024.0f);
  v.pixels[40] = std::numeric_limits<float>::quiet_NaN();  // ignored, as minmax_element does
  EXPECT_EQ(intensity_range(v).min, -1024.0f);
  EXPECT_EQ(intensity_range(v).max, -1024.0f);
}

}  // namespace
}  // namespace cajal::core
