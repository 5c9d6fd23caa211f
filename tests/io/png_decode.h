// Tests only: a picture as OpenCV decodes it (an independent decoder of cajal's PNG files), as
// R G B rows; empty when OpenCV cannot read it.
#pragma once

#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/png_image.h"

namespace cajal::io::testing {

inline RgbImage decode_png(const std::filesystem::path& path) {
  const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return {};
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  RgbImage image = make_rgb_image(rgb.cols, rgb.rows);
  for (int y = 0; y < rgb.rows; ++y) {
    std::copy(rgb.ptr<std::uint8_t>(y), rgb.ptr<std::uint8_t>(y) + 3 * rgb.cols, image.at(0, y));
  }
  return image;
}

}  // namespace cajal::io::testing
