// PNG pictures: 8-bit RGB images encoded here (zlib; the cajal binary does not load OpenCV's
// image codecs, which bring 140 libraries with them), written under a temporary name and renamed
// into place, with fixed settings so the same pixels always give the same bytes; text drawn with
// OpenCV.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cajal::io {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, top row first, R G B per pixel

  std::uint8_t* at(int x, int y) { return &pixels[3 * (static_cast<std::size_t>(y) * width + x)]; }
  const std::uint8_t* at(int x, int y) const {
    return &pixels[3 * (static_cast<std::size_t>(y) * width + x)];
  }
};

RgbImage make_rgb_image(int width, int height);

// A picture of at most 256 colours: each pixel the index of its colour in `palette`. A third of
// an RGB picture's bytes to fill and to compress (the QA pictures: grey levels and contours).
struct IndexedImage {
  int width = 0;
  int height = 0;
  std::vector<std::array<std::uint8_t, 3>> palette;  // R G B
  std::vector<std::uint8_t> pixels;                  // row-major, top row first

  std::uint8_t* row(int y) { return &pixels[static_cast<std::size_t>(y) * width]; }
  const std::uint8_t* row(int y) const { return &pixels[static_cast<std::size_t>(y) * width]; }
};

// A width x height picture of `palette`'s first colour.
IndexedImage make_indexed_image(int width, int height,
                                std::vector<std::array<std::uint8_t, 3>> palette);
// The same picture as R G B.
RgbImage to_rgb(const IndexedImage& image);

// Writes ASCII `text` in OpenCV's Hershey simplex font, the left end of its baseline at (x, y),
// `height` pixels tall, in `colour` (R, G, B) over a black outline so it reads on any background.
void draw_text(RgbImage& image, const std::string& text, int x, int y, int height,
               const std::array<std::uint8_t, 3>& colour);

// Writes an 8-bit RGB PNG (zlib level 1, no metadata). Throws Error when the image is empty or
// its pixel count does not match, or the file cannot be written.
void write_png(const RgbImage& image, const std::filesystem::path& path);
// Writes an 8-bit palette PNG (colour type 3, the same settings). Throws Error also when the
// palette is empty or longer than 256 colours, or a pixel's index is past its end.
void write_png(const IndexedImage& image, const std::filesystem::path& path);

}  // namespace cajal::io
