// Line charts as PNG (training curves): one panel per quantity, each with its series, axes
// labelled with their range, and a legend. Drawn with OpenCV, written through write_png.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cajal::io {

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;  // same length as x; non-finite values are skipped
};

struct PlotPanel {
  std::string title;  // e.g. "loss"
  std::string x_label;
  std::vector<PlotSeries> series;
};

// Panels side by side, 480x360 pixels each. Throws cajal::Error when a series' x and y differ in
// length or there is nothing to draw.
void write_line_plot(const std::vector<PlotPanel>& panels, const std::filesystem::path& path);

}  // namespace cajal::io
