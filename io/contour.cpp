#include "io/contour.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "core/error.h"

namespace cajal::io {
namespace {

// Pixel corners: integer lattice, corner (cx, cy) at index (cx - 0.5, cy - 0.5).
struct Corner {
  std::int64_t x = 0;
  std::int64_t y = 0;
  bool operator==(const Corner&) const = default;
};

// Directions in the slice, y pointing down the rows: 0 +x, 1 +y, 2 -x, 3 -y. (d + 1) % 4 is a
// clockwise (right) turn on screen.
constexpr std::int64_t kStepX[4] = {1, 0, -1, 0};
constexpr std::int64_t kStepY[4] = {0, 1, 0, -1};

class EdgeSet {
 public:
  EdgeSet(std::int64_t size_i, std::int64_t size_j)
      : width_(size_i + 1), out_(static_cast<std::size_t>((size_i + 1) * (size_j + 1)), 0) {}
  std::size_t id(const Corner& c) const { return static_cast<std::size_t>(c.x + width_ * c.y); }
  void add(const Corner& from, int direction) { out_[id(from)] |= bit(direction); }
  bool has(const Corner& from, int direction) const {
    return (out_[id(from)] & bit(direction)) != 0;
  }
  void remove(const Corner& from, int direction) {
    out_[id(from)] &= static_cast<std::uint8_t>(~bit(direction));
  }
  // First outgoing edge of `from`, or -1.
  int any(const Corner& from) const {
    for (int d = 0; d < 4; ++d) {
      if (has(from, d)) {
        return d;
      }
    }
    return -1;
  }

 private:
  static std::uint8_t bit(int direction) { return static_cast<std::uint8_t>(1u << direction); }
  std::int64_t width_;
  std::vector<std::uint8_t> out_;
};

// Directed pixel edges with the inside on the right (clockwise loops on screen for outer
// boundaries, counter-clockwise for holes).
EdgeSet boundary_edges(const std::vector<std::uint8_t>& mask, std::int64_t size_i,
                       std::int64_t size_j) {
  EdgeSet edges(size_i, size_j);
  auto inside = [&](std::int64_t i, std::int64_t j) {
    return i >= 0 && j >= 0 && i < size_i && j < size_j &&
           mask[static_cast<std::size_t>(i + size_i * j)] != 0;
  };
  for (std::int64_t j = 0; j < size_j; ++j) {
    for (std::int64_t i = 0; i < size_i; ++i) {
      if (!inside(i, j)) {
        continue;
      }
      if (!inside(i, j - 1)) {
        edges.add({i, j}, 0);
      }
      if (!inside(i + 1, j)) {
        edges.add({i + 1, j}, 1);
      }
      if (!inside(i, j + 1)) {
        edges.add({i + 1, j + 1}, 2);
      }
      if (!inside(i - 1, j)) {
        edges.add({i, j + 1}, 3);
      }
    }
  }
  return edges;
}

// Follows one loop from `start`, preferring right turns at the corners where two diagonal
// pixels meet, so inside pixels are 4-connected and every loop is a simple polygon.
std::vector<Corner> follow_loop(EdgeSet& edges, const Corner& start, int start_direction) {
  std::vector<Corner> loop;
  Corner at = start;
  int direction = start_direction;
  edges.remove(at, direction);
  while (true) {
    loop.push_back(at);
    at = {at.x + kStepX[direction], at.y + kStepY[direction]};
    int next = -1;
    for (int turn : {1, 0, 3}) {
      const int candidate = (direction + turn) % 4;
      if (edges.has(at, candidate)) {
        next = candidate;
        break;
      }
    }
    if (next < 0) {  // back at the start, whose edge was taken first
      CAJAL_CHECK(at == start) << "contour tracing lost its way at corner " << at.x << "," << at.y;
      break;
    }
    edges.remove(at, next);
    direction = next;
  }
  return loop;
}

double twice_signed_area(const std::vector<Corner>& loop) {
  double sum = 0;
  for (std::size_t k = 0; k < loop.size(); ++k) {
    const Corner& a = loop[k];
    const Corner& b = loop[(k + 1) % loop.size()];
    sum += static_cast<double>(a.x * b.y - b.x * a.y);
  }
  return sum;
}

// Drops repeated and collinear vertices of a closed polygon.
std::vector<Corner> simplify(const std::vector<Corner>& in) {
  std::vector<Corner> points;
  for (const Corner& c : in) {
    if (points.empty() || !(points.back() == c)) {
      points.push_back(c);
    }
  }
  while (points.size() > 1 && points.front() == points.back()) {
    points.pop_back();
  }
  bool changed = true;
  while (changed && points.size() > 3) {
    changed = false;
    std::vector<Corner> kept;
    const std::size_t n = points.size();
    for (std::size_t k = 0; k < n; ++k) {
      const Corner& prev = kept.empty() ? points[(k + n - 1) % n] : kept.back();
      const Corner& cur = points[k];
      const Corner& next = points[(k + 1) % n];
      const std::int64_t ax = cur.x - prev.x;
      const std::int64_t ay = cur.y - prev.y;
      const std::int64_t bx = next.x - cur.x;
      const std::int64_t by = next.y - cur.y;
      const bool collinear_same_way = ax * by - ay * bx == 0 && ax * bx + ay * by > 0;
      if (collinear_same_way) {
        changed = true;
      } else {
        kept.push_back(cur);
      }
    }
    points = std::move(kept);
  }
  return points;
}

}  // namespace

std::vector<IndexContour> trace_slice_contours(const std::vector<std::uint8_t>& mask,
                                               std::int64_t size_i, std::int64_t size_j) {
  CAJAL_CHECK(static_cast<std::int64_t>(mask.size()) == size_i * size_j)
      << "mask of " << mask.size() << " values for a " << size_i << "x" << size_j << " slice";
  EdgeSet edges = boundary_edges(mask, size_i, size_j);
  // Loops in raster order of their first (top-left) corner.
  std::vector<std::vector<Corner>> loops;
  for (std::int64_t y = 0; y <= size_j; ++y) {
    for (std::int64_t x = 0; x <= size_i; ++x) {
      for (int d = edges.any({x, y}); d >= 0; d = edges.any({x, y})) {
        loops.push_back(follow_loop(edges, {x, y}, d));
      }
    }
  }
  // Every lattice point on a loop, with the loops through it.
  std::unordered_map<std::size_t, std::vector<std::size_t>> on_loop;
  const auto key = [&](const Corner& c) {
    return static_cast<std::size_t>(c.x + (size_i + 1) * c.y);
  };
  for (std::size_t l = 0; l < loops.size(); ++l) {
    for (const Corner& c : loops[l]) {
      on_loop[key(c)].push_back(l);
    }
  }
  // Outer loops are roots; each hole is spliced, at its top-left corner, into the first loop
  // straight above it (which is the enclosing boundary or a hole above, already spliced).
  std::vector<std::size_t> root(loops.size());
  std::iota(root.begin(), root.end(), std::size_t{0});
  std::vector<std::vector<Corner>> merged(loops.size());
  std::vector<bool> is_hole(loops.size());
  for (std::size_t l = 0; l < loops.size(); ++l) {
    is_hole[l] = twice_signed_area(loops[l]) < 0;
    if (!is_hole[l]) {
      merged[l] = loops[l];
    }
  }
  for (std::size_t h = 0; h < loops.size(); ++h) {  // raster order: holes above come first
    if (!is_hole[h]) {
      continue;
    }
    const Corner v = loops[h].front();
    std::size_t target = loops.size();
    Corner hit{};
    for (std::int64_t y = v.y - 1; y >= 0 && target == loops.size(); --y) {
      const auto found = on_loop.find(key({v.x, y}));
      if (found != on_loop.end()) {
        hit = {v.x, y};
        target = found->second.front();
      }
    }
    CAJAL_CHECK(target < loops.size())
        << "hole at corner " << v.x << "," << v.y << " has no boundary above it";
    while (root[target] != target) {
      target = root[target];
    }
    root[h] = target;
    std::vector<Corner>& into = merged[target];
    const auto at = std::find(into.begin(), into.end(), hit);
    CAJAL_CHECK(at != into.end()) << "keyhole target corner not on the merged contour";
    std::vector<Corner> spliced(into.begin(), at + 1);
    spliced.insert(spliced.end(), loops[h].begin(), loops[h].end());
    spliced.push_back(v);
    spliced.insert(spliced.end(), at, into.end());
    into = std::move(spliced);
  }
  std::vector<IndexContour> contours;
  for (std::size_t l = 0; l < loops.size(); ++l) {
    if (is_hole[l]) {
      continue;
    }
    IndexContour contour;
    for (const Corner& c : simplify(merged[l])) {
      contour.push_back({static_cast<double>(c.x) - 0.5, static_cast<double>(c.y) - 0.5});
    }
    contours.push_back(std::move(contour));
  }
  return contours;
}

std::vector<std::uint8_t> rasterize_contours(const std::vector<IndexContour>& contours,
                                             std::int64_t size_i, std::int64_t size_j) {
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(size_i * size_j), 0);
  for (const IndexContour& contour : contours) {
    for (std::int64_t j = 0; j < size_j; ++j) {
      const double y = static_cast<double>(j);
      std::vector<double> crossings;
      for (std::size_t k = 0; k < contour.size(); ++k) {
        const IndexPoint& a = contour[k];
        const IndexPoint& b = contour[(k + 1) % contour.size()];
        if ((a[1] <= y) != (b[1] <= y)) {
          crossings.push_back(a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
        }
      }
      std::sort(crossings.begin(), crossings.end());
      for (std::size_t c = 0; c + 1 < crossings.size(); c += 2) {
        for (std::int64_t i = 0; i < size_i; ++i) {
          const double x = static_cast<double>(i);
          if (x > crossings[c] && x < crossings[c + 1]) {
            mask[static_cast<std::size_t>(i + size_i * j)] = 1;
          }
        }
      }
    }
  }
  return mask;
}

}  // namespace cajal::io
