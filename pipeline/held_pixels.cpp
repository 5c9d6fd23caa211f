#include "pipeline/held_pixels.h"

#include <algorithm>
#include <bit>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "core/select.h"

namespace cajal::pipeline {

namespace fs = std::filesystem;

HeldPixels::HeldPixels(const core::Volume& volume, fs::path spill_file)
    : file_(std::move(spill_file)) {
  count_ = volume.pixels.size();
  if (write_spill(volume)) {
    spilled_ = true;
    return;
  }
  std::error_code ignored;
  fs::remove(file_, ignored);
  pack(volume);
}

HeldPixels::~HeldPixels() {
  if (spilled_) {
    std::error_code ignored;
    fs::remove(file_, ignored);
  }
}

void HeldPixels::take(core::Volume& volume) {
  CAJAL_CHECK(volume.pixels.size() == count_) << "held pixels of another volume";
  if (!spilled_ && !packed_) {
    float_values_ = std::move(volume.pixels);
  }
  std::vector<float>().swap(volume.pixels);
}

std::int64_t HeldPixels::bytes() const {
  return static_cast<std::int64_t>(values_.size() * sizeof(std::int16_t) +
                                   float_values_.size() * sizeof(float));
}

void HeldPixels::restore(core::Volume& volume) {
  if (spilled_) {
    std::ifstream in(file_, std::ios::binary);
    const std::size_t size = packed_ ? sizeof(std::int16_t) : sizeof(float);
    const auto short_file = [&] {
      return Error("input pixels kept in '" + file_.string() + "'",
                   std::to_string(count_ * size) + " bytes", "a shorter file");
    };
    if (packed_) {
      // Read a slab at a time and widened straight into the volume: no second full-size
      // buffer to touch afresh.
      volume.pixels.resize(count_);
      std::vector<std::int16_t> slab(std::min<std::size_t>(count_, std::size_t{1} << 20));
      for (std::size_t done = 0; done < count_; done += slab.size()) {
        const std::size_t n = std::min(slab.size(), count_ - done);
        if (!in.read(reinterpret_cast<char*>(slab.data()),
                     static_cast<std::streamsize>(n * size))) {
          throw short_file();
        }
        widen(slab.data(), n, volume.pixels.data() + done);
      }
    } else {
      float_values_.resize(count_);
      if (!in.read(reinterpret_cast<char*>(float_values_.data()),
                   static_cast<std::streamsize>(count_ * size))) {
        throw short_file();
      }
    }
    in.close();
    fs::remove(file_);
    spilled_ = false;
    if (packed_) {
      return;
    }
  }
  if (!packed_) {
    volume.pixels.swap(float_values_);
    std::vector<float>().swap(float_values_);
    return;
  }
  volume.pixels.resize(values_.size());
  widen(values_.data(), values_.size(), volume.pixels.data());
  std::vector<std::int16_t>().swap(values_);
}

void HeldPixels::widen(const std::int16_t* values, std::size_t n, float* pixels) const {
  for (std::size_t v = 0; v < n; ++v) {
    pixels[v] = static_cast<float>(values[v]) + offset_;
  }
}

// Whether `volume`'s pixel type is one whose values 16-bit integers may hold (offset_ set).
bool HeldPixels::packable(const core::Volume& volume) {
  using core::PixelType;
  const PixelType type = volume.pixel_type;
  offset_ = type == PixelType::uint16 ? 32768.0f : 0.0f;
  return type == PixelType::int8 || type == PixelType::uint8 || type == PixelType::int16 ||
         type == PixelType::uint16;
}

// Packs `n` pixels into `values` without a branch per value (so the compiler vectorises it):
// out-of-range values and NaN become 0, and false when any value does not come back bit for
// bit (-0.0 included).
bool HeldPixels::pack_block(const float* pixels, std::size_t n, std::int16_t* values) const {
  std::uint32_t differs = 0;
  for (std::size_t v = 0; v < n; ++v) {
    const float shifted = pixels[v] - offset_;
    const bool fits = (shifted >= -32768.0f) & (shifted <= 32767.0f);
    const auto value = static_cast<std::int16_t>(core::select_bits(fits, shifted, 0.0f));
    values[v] = value;
    differs |= std::bit_cast<std::uint32_t>(static_cast<float>(value) + offset_) ^
               std::bit_cast<std::uint32_t>(pixels[v]);
  }
  return differs == 0;
}

// The pixels into file_, packed a block at a time when every block packs (else as floats);
// false when the file cannot be written.
bool HeldPixels::write_spill(const core::Volume& volume) {
  const float* pixels = volume.pixels.data();
  if (packable(volume)) {
    std::ofstream out(file_, std::ios::binary);
    std::vector<std::int16_t> block(std::min<std::size_t>(count_, std::size_t{1} << 18));
    packed_ = true;
    for (std::size_t start = 0; start < count_ && packed_; start += block.size()) {
      const std::size_t n = std::min(block.size(), count_ - start);
      packed_ = pack_block(pixels + start, n, block.data());
      if (packed_ && !out.write(reinterpret_cast<const char*>(block.data()),
                                static_cast<std::streamsize>(n * sizeof(std::int16_t)))) {
        packed_ = false;
        return false;
      }
    }
    if (packed_) {
      return static_cast<bool>(out.flush());
    }
  }
  std::ofstream out(file_, std::ios::binary | std::ios::trunc);
  return out.write(reinterpret_cast<const char*>(pixels),
                   static_cast<std::streamsize>(count_ * sizeof(float))) &&
         out.flush();
}

// In memory: packed when every value packs, else left for take() to move.
void HeldPixels::pack(const core::Volume& volume) {
  packed_ = false;
  if (!packable(volume)) {
    return;
  }
  values_.resize(count_);
  constexpr std::size_t kBlock = 4096;
  for (std::size_t start = 0; start < count_; start += kBlock) {
    if (!pack_block(volume.pixels.data() + start, std::min(kBlock, count_ - start),
                    values_.data() + start)) {
      std::vector<std::int16_t>().swap(values_);
      return;
    }
  }
  packed_ = true;
}

}  // namespace cajal::pipeline
