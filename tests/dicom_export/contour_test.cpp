#include "io/contour.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace cajal::io {
namespace {

// A slice from rows of '#' (inside) and '.' (outside).
struct Slice {
  std::int64_t size_i = 0;
  std::int64_t size_j = 0;
  std::vector<std::uint8_t> mask;
};

Slice from_rows(const std::vector<std::string>& rows) {
  Slice slice;
  slice.size_j = static_cast<std::int64_t>(rows.size());
  slice.size_i = static_cast<std::int64_t>(rows.front().size());
  for (const std::string& row : rows) {
    for (char c : row) {
      slice.mask.push_back(c == '#' ? 1 : 0);
    }
  }
  return slice;
}

void expect_round_trip(const Slice& slice, std::size_t expected_contours) {
  const std::vector<IndexContour> contours =
      trace_slice_contours(slice.mask, slice.size_i, slice.size_j);
  EXPECT_EQ(contours.size(), expected_contours);
  EXPECT_EQ(rasterize_contours(contours, slice.size_i, slice.size_j), slice.mask);
}

TEST(TraceSliceContours, SingleVoxelGivesASquareOnItsPixelEdges) {
  const Slice slice = from_rows({"...", ".#.", "..."});
  const std::vector<IndexContour> contours =
      trace_slice_contours(slice.mask, slice.size_i, slice.size_j);
  ASSERT_EQ(contours.size(), 1u);
  EXPECT_EQ(contours[0], (IndexContour{{0.5, 0.5}, {1.5, 0.5}, {1.5, 1.5}, {0.5, 1.5}}));
}

TEST(TraceSliceContours, RingIsOneKeyholeContourThatRasterisesWithItsHole) {
  expect_round_trip(from_rows({".......", ".#####.", ".#...#.", ".#...#.", ".#####.", "......."}),
                    1);
}

TEST(TraceSliceContours, IslandsAreSeparateContours) {
  expect_round_trip(from_rows({"##...##", "##...##", ".......", "...#..."}), 3);
}

TEST(TraceSliceContours, IslandInsideAHoleAndSeveralHolesRoundTrip) {
  expect_round_trip(from_rows({"#########", "#.......#", "#.##.#..#", "#.##....#", "#.......#",
                               "#########", "#.#.#.#.#", "#########"}),
                    3);  // the outer boundary (holes keyholed in) and two islands in the big hole
}

TEST(TraceSliceContours, DiagonalNeighboursAndMaskEdgesRoundTrip) {
  expect_round_trip(from_rows({"#.#", ".#.", "#.#"}), 5);
}

TEST(TraceSliceContours, RandomMasksRoundTripExactly) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 200; ++trial) {
    Slice slice;
    slice.size_i = 1 + static_cast<std::int64_t>(random() % 17);
    slice.size_j = 1 + static_cast<std::int64_t>(random() % 13);
    const auto density = 1 + random() % 3;
    for (std::int64_t v = 0; v < slice.size_i * slice.size_j; ++v) {
      slice.mask.push_back(random() % 4 < density ? 1 : 0);
    }
    const std::vector<IndexContour> contours =
        trace_slice_contours(slice.mask, slice.size_i, slice.size_j);
    ASSERT_EQ(rasterize_contours(contours, slice.size_i, slice.size_j), slice.mask)
        << "trial " << trial;
  }
}

TEST(TraceSliceContours, EmptySliceHasNoContour) {
  EXPECT_TRUE(trace_slice_contours(std::vector<std::uint8_t>(12, 0), 4, 3).empty());
}

}  // namespace
}  // namespace cajal::io
