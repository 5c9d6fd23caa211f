#include "engine/train/random.h"

#include <bit>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace cajal::engine::train {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t state = seed;
  const auto a = splitmix64(state);
  state = a ^ (stream * 0xd1b54a32d192ed03ULL);
  return splitmix64(state);
}

Generator::Generator(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& word : s_)
    word = splitmix64(state);
}

std::uint64_t Generator::next() {
  const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

double Generator::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t Generator::below(std::uint64_t bound) {
  CAJAL_CHECK(bound >= 1) << "below(0)";
  // Rejection of the incomplete top range.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t x = next();
  while (x >= limit)
    x = next();
  return x % bound;
}

double Generator::normal() {
  // u1 in (0, 1] so that log(u1) is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace cajal::engine::train
