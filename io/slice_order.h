// Orders the slices of one series along its normal and derives the volume geometry, refusing
// series that do not form a regular grid. Internal to io/; pure arithmetic, tested directly.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/geometry.h"

namespace cajal::io::detail {

struct SliceInput {
  std::array<double, 3> position;  // ImagePositionPatient, mm LPS
  std::string tie_breaker;         // SOP Instance UID, so equal inputs give one order
};

struct SliceLayout {
  std::vector<std::size_t> order;  // indices into the input, ascending along the normal
  core::Geometry geometry;
  std::string problem;  // empty when the slices form a regular grid
};

struct PlaneInput {
  std::array<double, 6> orientation;    // ImageOrientationPatient: row cosine, column cosine
  std::array<double, 2> pixel_spacing;  // PixelSpacing: between rows, between columns
  long rows = 0;
  long columns = 0;
  double single_slice_spacing = 1.0;  // used when there is one slice
};

SliceLayout order_slices(const std::vector<SliceInput>& slices, const PlaneInput& plane);

}  // namespace cajal::io::detail
