// NumPy .npy files (format versions 1.0, 2.0 and 3.0) to and from a plain float32 array. Files
// are hostile: the magic, the version, the header length against the file size, the header's
// dtype, fortran_order and shape, and the data length are all checked before use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace cajal::io {

// C order, shape outermost first. An empty shape is a scalar (one value).
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
  // The file's element type before conversion to float32: "float32", "float64", "int16" or
  // "uint8".
  std::string source_dtype = "float32";
};

// Reads little-endian float32, float64, int16 or uint8 (any byte order for one-byte types) in C
// order, converting to float32. Throws cajal::Error naming `path`, what, expected and got.
NpyArray read_npy(const std::filesystem::path& path);
// The same on bytes in memory; `source` names them in messages.
NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& source);

// Writes a version 1.0 file ('<f4', C order) under a temporary name next to `path` and renames
// it into place when complete. data.size() must be the product of `shape`.
void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape,
               std::span<const float> data);
// The bytes write_npy would write.
std::vector<std::uint8_t> encode_npy(const std::vector<std::int64_t>& shape,
                                     std::span<const float> data);

}  // namespace cajal::io
