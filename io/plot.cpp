#include "io/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "io/png_image.h"

namespace cajal::io {
namespace {

constexpr int kWidth = 480;
constexpr int kHeight = 360;
constexpr int kLeft = 70;
constexpr int kRight = 20;
constexpr int kTop = 40;
constexpr int kBottom = 50;

const cv::Scalar kColours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}};

std::string format(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

void text(cv::Mat& image, const std::string& s, int x, int y, double scale = 0.45) {
  cv::putText(image, s, {x, y}, cv::FONT_HERSHEY_SIMPLEX, scale, {0, 0, 0}, 1, cv::LINE_AA);
}

void draw_panel(cv::Mat& image, const PlotPanel& panel, int x0) {
  double x_min = INFINITY;
  double x_max = -INFINITY;
  double y_min = INFINITY;
  double y_max = -INFINITY;
  for (const auto& s : panel.series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x_min = std::min(x_min, s.x[i]);
        x_max = std::max(x_max, s.x[i]);
        y_min = std::min(y_min, s.y[i]);
        y_max = std::max(y_max, s.y[i]);
      }
    }
  }
  if (!std::isfinite(x_min)) {
    return;
  }
  if (x_max == x_min) {
    x_max = x_min + 1;
  }
  if (y_max == y_min) {  // a flat line in the middle
    y_min -= 0.5;
    y_max += 0.5;
  }
  const int plot_w = kWidth - kLeft - kRight;
  const int plot_h = kHeight - kTop - kBottom;
  const auto to_px = [&](double x, double y) {
    return cv::Point(
        x0 + kLeft + static_cast<int>(std::lround((x - x_min) / (x_max - x_min) * plot_w)),
        kTop + plot_h - static_cast<int>(std::lround((y - y_min) / (y_max - y_min) * plot_h)));
  };
  cv::rectangle(image, {x0 + kLeft, kTop}, {x0 + kLeft + plot_w, kTop + plot_h}, {0, 0, 0}, 1);
  text(image, panel.title, x0 + kLeft, kTop - 15, 0.6);
  text(image, format(y_max), x0 + 5, kTop + 5);
  text(image, format(y_min), x0 + 5, kTop + plot_h);
  text(image, format(x_min), x0 + kLeft, kTop + plot_h + 20);
  text(image, format(x_max), x0 + kLeft + plot_w - 40, kTop + plot_h + 20);
  text(image, panel.x_label, x0 + kLeft + plot_w / 2 - 20, kTop + plot_h + 40);
  int legend_y = kTop + 20;
  for (std::size_t k = 0; k < panel.series.size(); ++k) {
    const auto& s = panel.series[k];
    const cv::Scalar colour = kColours[k % std::size(kColours)];
    std::vector<cv::Point> points;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        points.push_back(to_px(s.x[i], s.y[i]));
      }
    }
    if (points.size() == 1) {
      cv::circle(image, points[0], 3, colour, cv::FILLED, cv::LINE_AA);
    } else if (!points.empty()) {
      cv::polylines(image, points, false, colour, 2, cv::LINE_AA);
    }
    int baseline = 0;
    const int width = cv::getTextSize(s.name, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &baseline).width;
    const int legend_x = x0 + kLeft + plot_w - width - 40;  // top right, inside the frame
    cv::line(image, {legend_x, legend_y - 4}, {legend_x + 20, legend_y - 4}, colour, 2);
    text(image, s.name, legend_x + 25, legend_y);
    legend_y += 18;
  }
}

}  // namespace

void write_line_plot(const std::vector<PlotPanel>& panels, const std::filesystem::path& path) {
  if (panels.empty()) {
    throw Error("plot '" + path.string() + "'", "at least one panel", "none");
  }
  for (const auto& panel : panels) {
    for (const auto& s : panel.series) {
      if (s.x.size() != s.y.size()) {
        throw Error("plot '" + path.string() + "': series '" + s.name + "'",
                    std::to_string(s.x.size()) + " y values", std::to_string(s.y.size()));
      }
    }
  }
  // The Mat's channels hold R, G, B in that order (the colours above are RGB): copied as they are.
  cv::Mat image(kHeight, kWidth * static_cast<int>(panels.size()), CV_8UC3,
                cv::Scalar(255, 255, 255));
  for (std::size_t p = 0; p < panels.size(); ++p) {
    draw_panel(image, panels[p], static_cast<int>(p) * kWidth);
  }
  RgbImage rgb = make_rgb_image(image.cols, image.rows);
  for (int y = 0; y < image.rows; ++y) {
    for (int x = 0; x < image.cols; ++x) {
      const auto& v = image.at<cv::Vec3b>(y, x);
      std::copy(v.val, v.val + 3, rgb.at(x, y));
    }
  }
  write_png(rgb, path);
}

}  // namespace cajal::io
