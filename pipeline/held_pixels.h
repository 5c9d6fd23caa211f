// The input's pixels while the network runs (cajal segment): as 16-bit integers when they hold
// every value exactly (8- and 16-bit integer inputs, CT among them; half the bytes of the float
// pixels), in a file in the case folder rather than in memory (float pixels too), so
// --memory-limit is left for the network. Kept in memory when the file cannot be written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/volume.h"

namespace cajal::pipeline {

class HeldPixels {
 public:
  // Packs and writes `volume`'s pixels, only reading them: others may read them meanwhile.
  // Packed a block at a time into the file (no packed copy of the whole volume to touch afresh);
  // kept in memory, packed where they can be, when the file cannot be written.
  HeldPixels(const core::Volume& volume, std::filesystem::path spill_file);
  ~HeldPixels();
  HeldPixels(const HeldPixels&) = delete;
  HeldPixels& operator=(const HeldPixels&) = delete;

  // Takes the pixels out of `volume` (left empty), once nothing else reads them.
  void take(core::Volume& volume);
  // Bytes held in memory.
  std::int64_t bytes() const;
  // Whether the pixels are in the file, and whether as 16-bit integers.
  bool spilled() const { return spilled_; }
  bool packed() const { return packed_; }
  // Puts the pixels back into `volume`.
  void restore(core::Volume& volume);

 private:
  bool packable(const core::Volume& volume);
  bool pack_block(const float* pixels, std::size_t n, std::int16_t* values) const;
  bool write_spill(const core::Volume& volume);
  void pack(const core::Volume& volume);
  void widen(const std::int16_t* values, std::size_t n, float* pixels) const;

  std::filesystem::path file_;
  std::size_t count_ = 0;
  std::vector<std::int16_t> values_;
  std::vector<float> float_values_;  // not packed and not spilled
  float offset_ = 0;
  bool packed_ = false;
  bool spilled_ = false;
};

}  // namespace cajal::pipeline
