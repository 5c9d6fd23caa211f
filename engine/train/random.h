// A deterministic random generator of cajal's own (issue 4): xoshiro256** seeded through
// splitmix64, with its own uniform and Box-Muller normal, so the same seed gives the same numbers
// with every compiler and standard library (std:: distributions are implementation-defined).
#pragma once

#include <array>
#include <cstdint>

namespace cajal::engine::train {

// splitmix64: one step of the mixer, also used to derive seeds (e.g. seed and epoch).
std::uint64_t splitmix64(std::uint64_t& state);
// A seed mixed from two values: different (seed, stream) pairs give unrelated sequences.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream);

class Generator {
 public:
  explicit Generator(std::uint64_t seed);

  std::uint64_t next();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, bound), bound >= 1, without modulo bias.
  std::uint64_t below(std::uint64_t bound);
  // Standard normal by Box-Muller (one value per call, the pair's second is dropped).
  double normal();
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  // True with probability p.
  bool chance(double p) { return uniform() < p; }

  // The whole state, for checkpoints.
  std::array<std::uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<std::uint64_t, 4>& state) { s_ = state; }

 private:
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace cajal::engine::train
