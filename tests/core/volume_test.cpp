#include "core/volume.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace cajal::core
