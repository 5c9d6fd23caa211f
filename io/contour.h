// Closed planar contours traced from a binary slice, for DICOM RT Structure Sets.
//
// Convention (docs/dicom-export.md): contours follow the pixel edges (the "crack" between an
// inside and an outside pixel), so every vertex lies on a pixel corner, half a voxel from the
// centres, and a point-in-polygon test at the voxel centres gives back exactly the mask. Each
// outer boundary is one contour; every hole is joined to the boundary around it by a keyhole,
// a zero-width cut traversed once in each direction, so that a slice holds no nested contours
// and a planning system fills it correctly whether it ORs or XORs the contours of a plane.
// Separate islands are separate contours.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace cajal::io {

// Continuous (i, j) index coordinates of a vertex in the slice; voxel centres are integers.
using IndexPoint = std::array<double, 2>;
using IndexContour = std::vector<IndexPoint>;

// Traces the contours of one slice. `mask` holds size_i * size_j values, pixel (i, j) at
// mask[i + size_i * j]; non-zero is inside. Contours are closed implicitly (the last point is
// not repeated), have no collinear vertices, and come in a stable order (by first vertex).
std::vector<IndexContour> trace_slice_contours(const std::vector<std::uint8_t>& mask,
                                               std::int64_t size_i, std::int64_t size_j);

// Rasterises contours with the even-odd rule at the voxel centres, ORing the contours as
// plastimatch does; the inverse of trace_slice_contours (used by tests).
std::vector<std::uint8_t> rasterize_contours(const std::vector<IndexContour>& contours,
                                             std::int64_t size_i, std::int64_t size_j);

}  // namespace cajal::io
