#include "pipeline/dicom_export.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

io::DicomSeries series_on(const core::Geometry& geometry) {
  io::DicomSeries series;
  series.series_uid = "1.2.3";
  series.geometry = geometry;
  return series;
}

core::Geometry small_grid() {
  core::Geometry g;
  g.size = {3, 2, 2};
  g.spacing = {0.5, 0.7, 2.0};
  g.origin = {-10, 20, 5};
  return g;
}

TEST(LabelMapOnSeriesGrid, ReindexesAMapStoredWithFlippedAxes) {
  const core::Geometry grid = small_grid();
  // The same voxels stored with axes i and k reversed (as RAS-stored NIfTI flips i and j).
  core::Volume labels;
  labels.geometry = grid;
  labels.geometry.direction = {-1, 0, 0, 0, 1, 0, 0, 0, -1};
  labels.geometry.origin = {-10 + 2 * 0.5, 20, 5 + 2.0};
  for (int v = 0; v < 12; ++v) {
    labels.pixels.push_back(static_cast<float>(v));
  }
  const core::Volume out = label_map_on_series_grid(labels, series_on(grid));
  // Series voxel (i, j, k) is the map's voxel (2 - i, j, 1 - k).
  for (int k = 0; k < 2; ++k) {
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(out.at(i, j, k), labels.at(2 - i, j, 1 - k)) << i << "," << j << "," << k;
      }
    }
  }
}

TEST(LabelMapOnSeriesGrid, RefusesAMapShiftedByHalfAVoxel) {
  const core::Geometry grid = small_grid();
  core::Volume labels = core::make_volume(grid, core::PixelType::uint8);
  labels.geometry.origin[0] += 0.25;
  EXPECT_THROW(label_map_on_series_grid(labels, series_on(grid)), Error);
}

TEST(LabelMapOnSeriesGrid, RefusesFractionalLabels) {
  const core::Geometry grid = small_grid();
  core::Volume labels = core::make_volume(grid, core::PixelType::float32, 1.5f);
  EXPECT_THROW(label_map_on_series_grid(labels, series_on(grid)), Error);
}

}  // namespace
}  // namespace cajal::pipeline
