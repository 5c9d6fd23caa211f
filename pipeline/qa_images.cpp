#include "pipeline/qa_images.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <map>
#include <set>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

constexpr int kMinSide = 256;  // display pixels along the longer side of a slice
constexpr int kMaxSide = 512;
constexpr int kTile = 160;  // montage tile
constexpr int kSwatch = 16;

// Picture axes in LPS: columns run along `right`, rows along `down`; `normal` crosses the plane.
struct ViewAxes {
  core::Vec3 right;
  core::Vec3 down;
  core::Vec3 normal;
};

ViewAxes view_axes(QaView view) {
  switch (view) {
    case QaView::axial:
      return {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    case QaView::coronal:
      return {{1, 0, 0}, {0, 0, -1}, {0, 1, 0}};
    case QaView::sagittal:
      return {{0, 1, 0}, {0, 0, -1}, {1, 0, 0}};
  }
  CAJAL_CHECK(false) << "unknown view";
  return {};
}

double dot(const core::Vec3& a, const core::Vec3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// Range of the volume's outer corners (voxel edges) projected on `axis`.
std::pair<double, double> extent_along(const core::Geometry& grid, const core::Vec3& axis) {
  double low = INFINITY;
  double high = -INFINITY;
  for (int corner = 0; corner < 8; ++corner) {
    core::Vec3 index{};
    for (int c = 0; c < 3; ++c) {
      index[c] = (corner >> c) & 1 ? static_cast<double>(grid.size[c]) - 0.5 : -0.5;
    }
    const double t = dot(grid.index_to_physical(index), axis);
    low = std::min(low, t);
    high = std::max(high, t);
  }
  return {low, high};
}

// The pictures' palette: kGreys grey levels from black to white, then every structure colour.
// 224 levels instead of 256 (1.8 instead of 1.6 HU a level in the default 400 HU window) leave
// room for the colours, so each pixel is one byte, a third of RGB to fill and to compress.
constexpr int kGreys = 224;

const std::vector<io::RgbColor>& qa_palette() {
  static const std::vector<io::RgbColor> palette = [] {
    std::vector<io::RgbColor> colors;
    for (int q = 0; q < kGreys; ++q) {
      const auto v = static_cast<std::uint8_t>(std::lround(255.0 * q / (kGreys - 1)));
      colors.push_back({v, v, v});
    }
    const std::vector<io::RgbColor> structures = structure_colors();
    colors.insert(colors.end(), structures.begin(), structures.end());
    CAJAL_CHECK(colors.size() <= 256) << colors.size() << " colours for an 8-bit palette";
    return colors;
  }();
  return palette;
}

// The palette index of a structure colour.
std::uint8_t color_index(const io::RgbColor& color) {
  const std::vector<io::RgbColor>& palette = qa_palette();
  const auto found = std::find(palette.begin() + kGreys, palette.end(), color);
  CAJAL_CHECK(found != palette.end()) << "a structure colour outside the palette";
  return static_cast<std::uint8_t>(found - palette.begin());
}

// The grey level (palette index) of `value`: round((kGreys - 1) t), t its place in the window.
std::uint8_t grey(float value, const QaWindow& window) {
  const double t = (value - window.low) / std::max(1e-9, window.high - window.low);
  return static_cast<std::uint8_t>(std::lround((kGreys - 1) * std::clamp(t, 0.0, 1.0)));
}

io::IndexedImage scale_into_tile(const io::IndexedImage& source, int tile) {
  io::IndexedImage out = io::make_indexed_image(tile, tile, source.palette);
  const double scale =
      std::min(static_cast<double>(tile) / source.width, static_cast<double>(tile) / source.height);
  const int width = std::max(1, static_cast<int>(source.width * scale));
  const int height = std::max(1, static_cast<int>(source.height * scale));
  const int x0 = (tile - width) / 2;
  const int y0 = (tile - height) / 2;
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(source.height - 1, static_cast<int>((y + 0.5) / scale));
    for (int x = 0; x < width; ++x) {
      const int sx = std::min(source.width - 1, static_cast<int>((x + 0.5) / scale));
      out.row(y0 + y)[x0 + x] = source.row(sy)[sx];
    }
  }
  return out;
}

void paste(io::IndexedImage& target, const io::IndexedImage& source, int x0, int y0) {
  for (int y = 0; y < source.height; ++y) {
    std::copy_n(source.row(y), source.width, target.row(y0 + y) + x0);
  }
}

}  // namespace

std::string to_string(QaView view) {
  switch (view) {
    case QaView::axial:
      return "axial";
    case QaView::coronal:
      return "coronal";
    case QaView::sagittal:
      return "sagittal";
  }
  return "?";
}

io::IndexedImage render_qa_picture(const core::Volume& image, const core::Volume& labels,
                                   const std::vector<LabelName>& names, QaView view,
                                   const core::Vec3& through_mm, const QaWindow& window) {
  const core::Geometry& grid = image.geometry;
  CAJAL_CHECK(labels.pixels.size() == image.pixels.size()) << "labels and image differ in size";
  const ViewAxes axes = view_axes(view);
  const auto [right_low, right_high] = extent_along(grid, axes.right);
  const auto [down_low, down_high] = extent_along(grid, axes.down);
  const double longer = std::max(right_high - right_low, down_high - down_low);
  const double finest = std::min({grid.spacing[0], grid.spacing[1], grid.spacing[2]});
  const double pixel_mm =
      longer / std::clamp(longer / finest, static_cast<double>(kMinSide), double{kMaxSide});
  const int width = std::max(1, static_cast<int>(std::ceil((right_high - right_low) / pixel_mm)));
  const int height = std::max(1, static_cast<int>(std::ceil((down_high - down_low) / pixel_mm)));
  const double depth = dot(through_mm, axes.normal);
  io::IndexedImage picture = io::make_indexed_image(width, height, qa_palette());
  std::vector<int> label_at(static_cast<std::size_t>(width) * height, -1);
  // The continuous voxel index is affine in (x, y): its value at the first pixel centre and its
  // steps along a row and down a column, instead of a point mapped for each pixel.
  const auto index_at = [&](double x, double y) {
    const double u = right_low + (x + 0.5) * pixel_mm;
    const double v = down_low + (y + 0.5) * pixel_mm;
    core::Vec3 point{};
    for (int c = 0; c < 3; ++c) {
      point[c] = u * axes.right[c] + v * axes.down[c] + depth * axes.normal[c];
    }
    return grid.physical_to_index(point);
  };
  const core::Vec3 first = index_at(0, 0);
  const core::Vec3 across = index_at(1, 0);
  const core::Vec3 below = index_at(0, 1);
  core::Vec3 step_x{};
  core::Vec3 step_y{};
  for (int c = 0; c < 3; ++c) {
    step_x[c] = across[c] - first[c];
    step_y[c] = below[c] - first[c];
  }
  // Grey levels of the whole values from -32768 to 32767 (CT in HU, MR, label maps) looked up,
  // other values worked out one by one: the same levels either way. The table is kept for the
  // next picture of the same window on this thread.
  thread_local QaWindow table_window{NAN, NAN};
  thread_local std::vector<std::uint8_t> grey_of_whole;
  if (grey_of_whole.empty() || table_window.low != window.low || table_window.high != window.high) {
    grey_of_whole.resize(std::size_t{1} << 16);
    for (std::size_t v = 0; v < grey_of_whole.size(); ++v) {
      grey_of_whole[v] = grey(static_cast<float>(static_cast<int>(v) - 32768), window);
    }
    table_window = window;
  }
  const auto grey_level = [&](float value) {
    const bool whole_range = value >= -32768.0f && value <= 32767.0f;  // NaN is not
    const int whole = whole_range ? static_cast<int>(value) : 0;
    return whole_range && static_cast<float>(whole) == value
               ? grey_of_whole[static_cast<std::size_t>(whole + 32768)]
               : grey(value, window);
  };
  // The voxel under pixel (x, y), or -1 outside the volume: along each axis c the nearest voxel,
  // floor(index + 0.5) (truncation where that is not negative).
  const auto voxel_at = [&](int x, int y, bool along_x, bool along_y) {
    std::int64_t voxel = 0;
    std::int64_t stride = 1;
    for (int c = 0; c < 3 && voxel >= 0; ++c) {
      const bool moves_with_x = step_x[c] != 0.0;
      if ((moves_with_x && along_x) || (!moves_with_x && along_y)) {
        const double shifted = first[c] + x * step_x[c] + y * step_y[c] + 0.5;
        const bool inside = shifted >= 0.0 && shifted < static_cast<double>(grid.size[c]);
        voxel = inside ? voxel + static_cast<std::int64_t>(shifted) * stride : -1;
      }
      stride *= grid.size[c];
    }
    return voxel;
  };
  const auto draw = [&](int x, int y, std::int64_t voxel) {
    picture.row(y)[x] = grey_level(image.pixels[static_cast<std::size_t>(voxel)]);
    // Label values are whole numbers.
    label_at[static_cast<std::size_t>(y) * width + x] =
        static_cast<int>(labels.pixels[static_cast<std::size_t>(voxel)]);
  };
  bool separable = true;  // no voxel axis moves with both x and y (the planes are not oblique)
  for (int c = 0; c < 3; ++c) {
    separable = separable && (step_x[c] == 0.0 || step_y[c] == 0.0);
  }
  if (separable) {
    // The axes that move with x give a column's part of the voxel, the others a row's: the same
    // sums as below, as the terms left out are x or y times a zero step.
    std::vector<std::int64_t> column(static_cast<std::size_t>(width));
    for (int x = 0; x < width; ++x) {
      column[static_cast<std::size_t>(x)] = voxel_at(x, 0, true, false);
    }
    for (int y = 0; y < height; ++y) {
      const std::int64_t row = voxel_at(0, y, false, true);
      if (row < 0) {
        continue;
      }
      for (int x = 0; x < width; ++x) {
        const std::int64_t part = column[static_cast<std::size_t>(x)];
        if (part >= 0) {
          draw(x, y, row + part);
        }
      }
    }
  } else {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const std::int64_t voxel = voxel_at(x, y, true, true);
        if (voxel >= 0) {
          draw(x, y, voxel);
        }
      }
    }
  }
  std::map<int, std::string> name_of;
  for (const LabelName& name : names) {
    name_of[name.label] = name.name;
  }
  std::map<int, std::uint8_t> color_of;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int label = label_at[static_cast<std::size_t>(y) * width + x];
      if (label <= 0) {
        continue;
      }
      bool edge = false;
      for (const auto& [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
        const int nx = x + dx;
        const int ny = y + dy;
        edge = edge || nx < 0 || ny < 0 || nx >= width || ny >= height ||
               label_at[static_cast<std::size_t>(ny) * width + nx] != label;
      }
      if (edge) {
        auto color = color_of.find(label);
        if (color == color_of.end()) {
          color =
              color_of.emplace(label, color_index(structure_color(name_of[label], label))).first;
        }
        picture.row(y)[x] = color->second;
      }
    }
  }
  return picture;
}

io::RgbImage render_qa_slice(const core::Volume& image, const core::Volume& labels,
                             const std::vector<LabelName>& names, QaView view,
                             const core::Vec3& through_mm, const QaWindow& window) {
  return io::to_rgb(render_qa_picture(image, labels, names, view, through_mm, window));
}

std::vector<std::string> structure_file_stems(const std::vector<LabelName>& names) {
  std::vector<std::string> stems;
  std::set<std::string> used;
  for (const LabelName& name : names) {
    std::string stem = name.name;
    for (char& c : stem) {
      const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      c = keep ? c : '_';
    }
    if (stem.empty() || used.count(stem) > 0) {
      stem += "_" + std::to_string(name.label);
    }
    used.insert(stem);
    stems.push_back(stem);
  }
  return stems;
}

std::vector<std::string> write_qa_images(const core::Volume& image, const core::Volume& labels,
                                         const std::vector<LabelName>& names,
                                         const std::vector<StructureStats>& stats,
                                         const QaWindow& window, const fs::path& qa_dir) {
  CAJAL_CHECK(stats.size() == names.size()) << "one StructureStats per name";
  fs::create_directories(qa_dir);
  const std::vector<std::string> stems = structure_file_stems(names);
  const QaView views[] = {QaView::axial, QaView::coronal, QaView::sagittal};
  // One picture per structure present and view, rendered and written on the context's threads
  // (omp_set_num_threads; each picture is a file of its own), listed and tiled in the order of
  // the structures, any error rethrown in that order.
  std::vector<std::size_t> present;
  for (std::size_t s = 0; s < stats.size(); ++s) {
    if (stats[s].voxel_count > 0) {
      present.push_back(s);
    }
  }
  const auto pictures = static_cast<std::int64_t>(present.size() * 3);
  std::vector<io::IndexedImage> thumbnails(present.size() * 3);
  std::vector<std::exception_ptr> errors(thumbnails.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t p = 0; p < pictures; ++p) {
    const auto i = static_cast<std::size_t>(p);
    const std::size_t s = present[i / 3];
    const QaView view = views[i % 3];
    try {
      const io::IndexedImage picture =
          render_qa_picture(image, labels, names, view, stats[s].centroid_mm, window);
      io::write_png(picture, qa_dir / (stems[s] + "_" + to_string(view) + ".png"));
      thumbnails[i] = scale_into_tile(picture, kTile);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  std::vector<std::string> written;
  std::vector<std::pair<std::uint8_t, std::vector<io::IndexedImage>>> rows;
  for (std::size_t r = 0; r < present.size(); ++r) {
    const std::size_t s = present[r];
    for (std::size_t v = 0; v < 3; ++v) {
      if (errors[r * 3 + v]) {
        std::rethrow_exception(errors[r * 3 + v]);
      }
      written.push_back(stems[s] + "_" + to_string(views[v]) + ".png");
    }
    rows.emplace_back(color_index(structure_color(names[s].name, names[s].label)),
                      std::vector<io::IndexedImage>{std::move(thumbnails[r * 3]),
                                                    std::move(thumbnails[r * 3 + 1]),
                                                    std::move(thumbnails[r * 3 + 2])});
  }
  if (rows.empty()) {
    const core::Geometry& g = image.geometry;
    const core::Vec3 centre = g.index_to_physical({(static_cast<double>(g.size[0]) - 1) / 2,
                                                   (static_cast<double>(g.size[1]) - 1) / 2,
                                                   (static_cast<double>(g.size[2]) - 1) / 2});
    std::vector<io::IndexedImage> tiles;
    for (QaView view : views) {
      tiles.push_back(
          scale_into_tile(render_qa_picture(image, labels, names, view, centre, window), kTile));
    }
    rows.emplace_back(std::uint8_t{0}, std::move(tiles));  // black
  }
  io::IndexedImage montage = io::make_indexed_image(
      kSwatch + 3 * kTile, static_cast<int>(rows.size()) * kTile, qa_palette());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const int y0 = static_cast<int>(r) * kTile;
    for (int y = 0; y < kTile; ++y) {
      std::fill_n(montage.row(y0 + y), kSwatch - 2, rows[r].first);
    }
    for (int t = 0; t < 3; ++t) {
      paste(montage, rows[r].second[t], kSwatch + t * kTile, y0);
    }
  }
  io::write_png(montage, qa_dir / "montage.png");
  written.push_back("montage.png");
  return written;
}

}  // namespace cajal::pipeline
