// The phantom's own random numbers: xoshiro256** seeded through splitmix64, with uniform and
// normal variates computed here rather than by <random>'s distributions, whose output differs
// between standard libraries. Same seed, same numbers, on every platform cajal builds on.
#pragma once

#include <cmath>
#include <cstdint>

namespace cajal::pipeline::phantom {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A well-mixed 64-bit hash of two values: for deriving independent streams (per case, per
// slice, per UID) from one seed.
inline std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b) {
  std::uint64_t state = a ^ (b * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
  splitmix64(state);
  return splitmix64(state);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& word : state_) {
      word = splitmix64(seed);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal, Box-Muller.
  double normal() {
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double normal(double mean, double sigma) { return mean + sigma * normal(); }
  // Uniform integer in [0, n).
  int below(int n) { return static_cast<int>(uniform() * n); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4];
};

}  // namespace cajal::pipeline::phantom
