// SHA-256 (FIPS 180-4) of bytes and files, as lower-case hex: the fingerprints of input pixels
// and model weights in the segmentation report.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace cajal::pipeline {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  // The digest as 64 lower-case hex digits; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void process_block(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(std::string_view bytes);
// Throws Error when the file cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace cajal::pipeline
