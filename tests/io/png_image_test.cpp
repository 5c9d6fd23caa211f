// The project's own PNG encoder, judged by an independent decoder (OpenCV's, through libpng).
#include "io/png_image.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "tests/io/png_decode.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("cajal_png_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Bands of 6 rows that would suit different PNG filters (cajal writes None only): noise, smooth 2D
// ramps (Paeth and Average), a noisy row repeated (Up), horizontal ramps (Sub), flat halves with
// an edge (None).
RgbImage picture(int width, int height) {
  RgbImage image = make_rgb_image(width, height);
  std::mt19937 random(7);
  std::vector<std::uint8_t> repeated(3 * static_cast<std::size_t>(width));
  for (auto& v : repeated) {
    v = static_cast<std::uint8_t>(random());
  }
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      std::uint8_t* p = image.at(x, y);
      for (int c = 0; c < 3; ++c) {
        int value = 0;
        switch (y / 6 % 5) {
          case 0:
            value = static_cast<int>(random() % 256);
            break;
          case 1:
            value = (x * x + 3 * y * y + (c + 1) * x * y) / 16;
            break;
          case 2:
            value = repeated[static_cast<std::size_t>(3 * x + c)];
            break;
          case 3:
            value = 7 * x + 40 * c + static_cast<int>(random() % 3);
            break;
          default:
            value = x < width / 2 ? 40 : 220;
            break;
        }
        p[c] = static_cast<std::uint8_t>(value);
      }
    }
  }
  return image;
}

TEST(PngImage, AnIndependentDecoderReadsThePixelsWritten) {
  for (const auto& [width, height] : {std::pair{37, 61}, {1, 1}, {256, 30}}) {
    const RgbImage image = picture(width, height);
    const fs::path path = scratch("p.png");
    write_png(image, path);
    const RgbImage back = testing::decode_png(path);
    EXPECT_EQ(back.width, width);
    EXPECT_EQ(back.height, height);
    EXPECT_TRUE(back.pixels == image.pixels) << width << " x " << height;
  }
  fs::remove_all(scratch("p.png").parent_path());
}

// Palette pictures of a few sizes and palettes (1, 5 and 256 colours) decode to their colours.
TEST(PngImage, AnIndependentDecoderReadsThePaletteColoursWritten) {
  std::mt19937 random(11);
  for (const auto& [width, height, colours] : {std::tuple{37, 61, 256}, {1, 1, 1}, {64, 9, 5}}) {
    std::vector<std::array<std::uint8_t, 3>> palette(static_cast<std::size_t>(colours));
    for (auto& colour : palette) {
      for (auto& v : colour) {
        v = static_cast<std::uint8_t>(random());
      }
    }
    IndexedImage image = make_indexed_image(width, height, palette);
    for (std::size_t n = 0; n < image.pixels.size(); ++n) {
      // Runs and noise, every colour used.
      image.pixels[n] = static_cast<std::uint8_t>((n % 7 < 3 ? n / 7 : random()) %
                                                  static_cast<std::size_t>(colours));
    }
    const fs::path path = scratch("q.png");
    write_png(image, path);
    const RgbImage back = testing::decode_png(path);
    EXPECT_EQ(back.width, width);
    EXPECT_EQ(back.height, height);
    EXPECT_TRUE(back.pixels == to_rgb(image).pixels) << width << " x " << height;
    // The signature (8 bytes), IHDR (25), then the palette's length (4) and type.
    EXPECT_EQ(read_bytes(path).substr(8 + 25 + 4, 4), "PLTE");
    EXPECT_EQ(to_rgb(image).pixels[0], palette[image.pixels[0]][0]);
  }
  fs::remove_all(scratch("q.png").parent_path());
}

TEST(PngImage, RefusesAPaletteThatDoesNotCoverItsPixels) {
  IndexedImage image = make_indexed_image(3, 2, {{1, 2, 3}, {4, 5, 6}});
  image.pixels[4] = 2;  // past the palette
  EXPECT_THROW(write_png(image, scratch("r.png")), Error);
  image.pixels[4] = 1;
  image.palette.clear();
  EXPECT_THROW(write_png(image, scratch("r.png")), Error);
  image.palette.assign(257, {0, 0, 0});
  EXPECT_THROW(write_png(image, scratch("r.png")), Error);
  image.palette.resize(2);
  image.pixels.pop_back();
  EXPECT_THROW(write_png(image, scratch("r.png")), Error);
  image.pixels.push_back(0);
  write_png(image, scratch("r.png"));
  EXPECT_EQ(testing::decode_png(scratch("r.png")).width, 3);
  fs::remove_all(scratch("r.png").parent_path());
}

TEST(PngImage, SamePixelsGiveTheSameBytesAndNoTemporaryIsLeft) {
  const RgbImage image = picture(64, 48);
  write_png(image, scratch("a.png"));
  write_png(image, scratch("b.png"));
  const std::string bytes = read_bytes(scratch("a.png"));
  EXPECT_EQ(bytes, read_bytes(scratch("b.png")));
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry :
       fs::directory_iterator(scratch("a.png").parent_path())) {
    ++files;
  }
  EXPECT_EQ(files, 2u);
  fs::remove_all(scratch("a.png").parent_path());
}

TEST(PngImage, RefusesAnImageWhosePixelsDoNotMatchItsSize) {
  RgbImage image = make_rgb_image(4, 4);
  image.pixels.pop_back();
  EXPECT_THROW(write_png(image, scratch("c.png")), Error);
  EXPECT_THROW(write_png(make_rgb_image(2, 2), scratch("missing") / "d.png"), Error);
  fs::remove_all(scratch("c.png").parent_path());
}

}  // namespace
}  // namespace cajal::io
