// IDX files (the MNIST / Fashion-MNIST format, http://yann.lecun.com/exdb/mnist/): a 4-byte
// magic (0, 0, type, rank), rank big-endian u32 dims, then the values in C order. Plain or
// gzip-compressed (Debian's dataset-fashion-mnist ships *.gz). Read as hostile input: the magic,
// the type, the rank, every dim and the data length against what the file holds are checked.
// Issue 4.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace cajal::io {

// Unsigned-byte IDX data (type 0x08), the type of every MNIST-style file.
struct IdxArray {
  std::vector<std::int64_t> dims;    // outermost first, e.g. [60000, 28, 28]
  std::vector<std::uint8_t> values;  // product of dims values, C order
};

// Reads a plain or gzip-compressed IDX file (detected from the gzip magic, not the name).
// Throws cajal::Error naming `path`, what, expected and got.
IdxArray read_idx(const std::filesystem::path& path);
// The same on uncompressed bytes in memory; `source` names them in messages.
IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& source);

}  // namespace cajal::io
