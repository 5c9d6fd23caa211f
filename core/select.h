// A branch-free choice between two floats, for loops that should vectorise.
#pragma once

#include <bit>
#include <cstdint>

namespace cajal::core {

// `keep ? x : y`, chosen through the bits of both. Written as `?:` in a loop, GCC keeps a branch
// when the chosen value feeds an operation that may trap (a float-to-integer conversion, a
// product) and leaves the loop scalar; both values are computed here, and the loop vectorises.
inline float select_bits(bool keep, float x, float y) {
  const std::uint32_t mask = 0u - static_cast<std::uint32_t>(keep);
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(x) & mask) |
                              (std::bit_cast<std::uint32_t>(y) & ~mask));
}

}  // namespace cajal::core
