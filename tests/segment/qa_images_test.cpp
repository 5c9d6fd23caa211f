#include "pipeline/qa_images.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "io/png_image.h"
#include "tests/io/png_decode.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

const std::vector<LabelName> kNames{{1, "Liver"}, {2, "Spleen"}};

// 20 x 16 x 10 voxels in LPS with identity direction: i runs to the patient's left, j to
// posterior, k to superior. Label 1 is a block at the patient's left, anterior and superior
// corner; label 2 a block at the right, posterior, inferior one.
struct Scene {
  core::Volume image;
  core::Volume labels;
};

Scene make_scene(const core::Vec3& spacing) {
  core::Geometry g;
  g.size = {20, 16, 10};
  g.spacing = spacing;
  g.origin = {-10, -8, -5};
  Scene scene{core::make_volume(g, core::PixelType::int16, 40),
              core::make_volume(g, core::PixelType::uint8)};
  for (std::int64_t k = 0; k < 10; ++k) {
    for (std::int64_t j = 0; j < 16; ++j) {
      for (std::int64_t i = 0; i < 20; ++i) {
        const std::size_t v = static_cast<std::size_t>(i + 20 * (j + 16 * k));
        if (i >= 13 && i < 18 && j >= 2 && j < 6 && k >= 6 && k < 9) {
          scene.labels.pixels[v] = 1;
        } else if (i >= 2 && i < 6 && j >= 10 && j < 14 && k >= 1 && k < 4) {
          scene.labels.pixels[v] = 2;
        }
        scene.image.pixels[v] = static_cast<float>(10 * i - 100);
      }
    }
  }
  return scene;
}

// The same anatomy stored RAS (i to the right, j anterior): flipped i and j.
Scene stored_ras(const Scene& lps) {
  Scene ras = lps;
  const core::Geometry& g = lps.image.geometry;
  for (core::Volume* volume : {&ras.image, &ras.labels}) {
    volume->geometry.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
    volume->geometry.origin = g.index_to_physical(
        {static_cast<double>(g.size[0] - 1), static_cast<double>(g.size[1] - 1), 0});
  }
  for (std::int64_t k = 0; k < 10; ++k) {
    for (std::int64_t j = 0; j < 16; ++j) {
      for (std::int64_t i = 0; i < 20; ++i) {
        const auto from = static_cast<std::size_t>(i + 20 * (j + 16 * k));
        const auto to = static_cast<std::size_t>((19 - i) + 20 * ((15 - j) + 16 * k));
        ras.image.pixels[to] = lps.image.pixels[from];
        ras.labels.pixels[to] = lps.labels.pixels[from];
      }
    }
  }
  return ras;
}

// Mean position (0..1 of width and height) of the pixels drawn in `color`.
std::pair<double, double> where_drawn(const io::RgbImage& picture, const io::RgbColor& color) {
  double x = 0;
  double y = 0;
  int n = 0;
  for (int py = 0; py < picture.height; ++py) {
    for (int px = 0; px < picture.width; ++px) {
      const std::uint8_t* p = picture.at(px, py);
      if (p[0] == color[0] && p[1] == color[1] && p[2] == color[2]) {
        x += px;
        y += py;
        ++n;
      }
    }
  }
  EXPECT_GT(n, 0) << "no pixel in the structure's colour";
  return {x / n / picture.width, y / n / picture.height};
}

TEST(QaImages, AxialIsRadiologicalLeftOnTheRightAnteriorUp) {
  const Scene scene = make_scene({1, 1, 1});
  const io::RgbImage axial = render_qa_slice(scene.image, scene.labels, kNames, QaView::axial,
                                             {4.5, -4.5, 2.5}, QaWindow{});
  const auto [x, y] = where_drawn(axial, structure_color("Liver", 1));
  EXPECT_GT(x, 0.5) << "patient's left should be on the picture's right";
  EXPECT_LT(y, 0.5) << "anterior should be at the top";
}

TEST(QaImages, CoronalHasSuperiorUpAndSagittalAnteriorLeft) {
  const Scene scene = make_scene({1, 1, 1});
  const core::Vec3 through{4.5, -4.5, 2.5};
  const auto coronal =
      render_qa_slice(scene.image, scene.labels, kNames, QaView::coronal, through, QaWindow{});
  const auto [cx, cy] = where_drawn(coronal, structure_color("Liver", 1));
  EXPECT_GT(cx, 0.5);
  EXPECT_LT(cy, 0.5) << "superior should be at the top";
  const auto sagittal =
      render_qa_slice(scene.image, scene.labels, kNames, QaView::sagittal, through, QaWindow{});
  const auto [sx, sy] = where_drawn(sagittal, structure_color("Liver", 1));
  EXPECT_LT(sx, 0.5) << "anterior should be on the left";
  EXPECT_LT(sy, 0.5);
}

TEST(QaImages, SameAnatomyGivesTheSamePictureWhateverTheStorageOrder) {
  const Scene lps = make_scene({1.5, 1, 2});
  const Scene ras = stored_ras(lps);
  for (QaView view : {QaView::axial, QaView::coronal, QaView::sagittal}) {
    const core::Vec3 through{5, -3, 4};
    const auto a = render_qa_slice(lps.image, lps.labels, kNames, view, through, QaWindow{});
    const auto b = render_qa_slice(ras.image, ras.labels, kNames, view, through, QaWindow{});
    EXPECT_EQ(a.width, b.width) << to_string(view);
    EXPECT_EQ(a.height, b.height) << to_string(view);
    EXPECT_TRUE(a.pixels == b.pixels) << to_string(view);
  }
}

TEST(QaImages, KeepsThePhysicalAspectRatio) {
  const Scene scene = make_scene({1, 1, 4});  // 20 mm wide, 40 mm tall in coronal
  const auto coronal =
      render_qa_slice(scene.image, scene.labels, kNames, QaView::coronal, {0, 0, 0}, QaWindow{});
  EXPECT_NEAR(static_cast<double>(coronal.height) / coronal.width, 2.0, 0.02);
  const auto axial =
      render_qa_slice(scene.image, scene.labels, kNames, QaView::axial, {0, 0, 0}, QaWindow{});
  EXPECT_NEAR(static_cast<double>(axial.height) / axial.width, 16.0 / 20.0, 0.02);
}

TEST(QaImages, WindowsGreyLevels) {
  const Scene scene = make_scene({1, 1, 1});  // intensity 10 i - 100: -100 .. 90
  const auto axial = render_qa_slice(scene.image, scene.labels, kNames, QaView::axial, {0, 0, -4.5},
                                     QaWindow{-100, 90});
  EXPECT_EQ(axial.at(0, axial.height / 2)[0], 0);
  EXPECT_EQ(axial.at(axial.width - 1, axial.height / 2)[0], 255);
  // Whole values are looked up, others worked out; both ways give the level
  // round(223 (v - low) / width), halves up, shown as round(255 level / 223), and values beyond
  // the window (and beyond 16 bits) are clamped. -81 and -80.5: level 22 and 23 of 224 (25 and
  // 26), where 256 levels would give 26 and 26.
  Scene odd = make_scene({1, 1, 1});
  const std::vector<float> values = {-5.0f,  -5.4f,  25.0f,     25.5f,
                                     -81.0f, -80.5f, -40000.0f, 70000.0f};
  const std::vector<int> levels = {128, 127, 168, 168, 25, 26, 0, 255};
  for (std::size_t v = 0; v < values.size(); ++v) {
    std::fill(odd.image.pixels.begin(), odd.image.pixels.end(), values[v]);
    const auto picture = render_qa_slice(odd.image, odd.labels, kNames, QaView::axial, {0, 0, -4.5},
                                         QaWindow{-100, 90});
    EXPECT_EQ(picture.at(0, picture.height / 2)[0], levels[v]) << "value " << values[v];
  }
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(QaImages, WritesViewsAndMontageWithTheSameBytesEveryTime) {
  const Scene scene = make_scene({1, 1, 2});
  const std::vector<LabelName> names{{1, "Liver"}, {2, "Spleen"}, {3, "Heart/Great vessels"}};
  const auto stats = measure_structures(scene.image, scene.labels, names);
  const fs::path root = fs::temp_directory_path() / ("cajal_qa_test_" + std::to_string(getpid()));
  fs::remove_all(root);
  const auto files = write_qa_images(scene.image, scene.labels, names, stats, {}, root / "a");
  write_qa_images(scene.image, scene.labels, names, stats, {}, root / "b");
  EXPECT_EQ(files,
            (std::vector<std::string>{"Liver_axial.png", "Liver_coronal.png", "Liver_sagittal.png",
                                      "Spleen_axial.png", "Spleen_coronal.png",
                                      "Spleen_sagittal.png", "montage.png"}));
  for (const std::string& file : files) {
    EXPECT_EQ(read_bytes(root / "a" / file), read_bytes(root / "b" / file)) << file;
  }
  const io::RgbImage montage = io::testing::decode_png(root / "a" / "montage.png");
  EXPECT_EQ(montage.height, 2 * 160);
  const io::RgbImage axial = io::testing::decode_png(root / "a" / "Liver_axial.png");
  const io::RgbImage rendered =
      render_qa_slice(scene.image, scene.labels, names, QaView::axial, stats[0].centroid_mm, {});
  EXPECT_TRUE(axial.pixels == rendered.pixels) << "PNG should hold the rendered pixels exactly";
  EXPECT_EQ(structure_file_stems(names)[2], "Heart_Great_vessels");
  fs::remove_all(root);
}

}  // namespace
}  // namespace cajal::pipeline
