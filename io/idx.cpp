#include "io/idx.h"

#include <fstream>
#include <iterator>
#include <sstream>

#include "core/error.h"
#include "io/gzip.h"

namespace cajal::io {
namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;
constexpr int kMaxRank = 8;
// Larger decompressed files are refused (Fashion-MNIST's largest is 47 MB).
constexpr std::size_t kMaxBytes = std::size_t{1} << 32;

std::string hex(unsigned value) {
  std::ostringstream text;
  text << "0x" << std::hex << (value < 16 ? "0" : "") << value;
  return text.str();
}

std::string type_name(unsigned type) {
  switch (type) {
    case 0x08:
      return hex(type) + " (unsigned byte)";
    case 0x09:
      return hex(type) + " (signed byte)";
    case 0x0B:
      return hex(type) + " (int16)";
    case 0x0C:
      return hex(type) + " (int32)";
    case 0x0D:
      return hex(type) + " (float32)";
    case 0x0E:
      return hex(type) + " (float64)";
    default:
      return hex(type) + " (not an IDX type)";
  }
}

}  // namespace

IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& source) {
  if (bytes.size() < 4) {
    throw Error(source + ": IDX magic", "4 bytes", std::to_string(bytes.size()) + " bytes");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    throw Error(source + ": IDX magic", "first two bytes 0x00 0x00",
                hex(bytes[0]) + " " + hex(bytes[1]));
  }
  if (bytes[2] != kUnsignedByte) {
    throw Error(source + ": IDX data type", type_name(kUnsignedByte), type_name(bytes[2]));
  }
  const int rank = bytes[3];
  if (rank < 1 || rank > kMaxRank) {
    throw Error(source + ": IDX rank", "1 to " + std::to_string(kMaxRank), std::to_string(rank));
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) {
    throw Error(source + ": IDX header",
                std::to_string(header) + " bytes for rank " + std::to_string(rank),
                std::to_string(bytes.size()) + " bytes");
  }
  IdxArray array;
  std::uint64_t count = 1;
  const std::uint64_t available = bytes.size() - header;
  for (int i = 0; i < rank; ++i) {
    const auto* d = bytes.data() + 4 + 4 * i;
    const std::uint64_t dim = (std::uint64_t{d[0]} << 24) | (std::uint64_t{d[1]} << 16) |
                              (std::uint64_t{d[2]} << 8) | std::uint64_t{d[3]};
    array.dims.push_back(static_cast<std::int64_t>(dim));
    // dim < 2^32 and count <= available < 2^32 before the product, so no overflow.
    count *= dim;
    if (count > available)
      break;
  }
  if (count != available || static_cast<int>(array.dims.size()) != rank) {
    std::string dims = "[";
    for (int i = 0; i < rank; ++i) {
      const auto* d = bytes.data() + 4 + 4 * i;
      dims += (i ? "," : "") + std::to_string((std::uint64_t{d[0]} << 24) |
                                              (std::uint64_t{d[1]} << 16) |
                                              (std::uint64_t{d[2]} << 8) | std::uint64_t{d[3]});
    }
    throw Error(source + ": IDX data length for dims " + dims + "]", "the product of the dims",
                std::to_string(available) + " bytes after the header");
  }
  array.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

IdxArray read_idx(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    throw Error("IDX file " + path.string(), "a readable file", "cannot open");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
  if (file.bad())
    throw Error("IDX file " + path.string(), "readable bytes", "a read error");
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
    bytes = gunzip(bytes, path.string(), kMaxBytes);
  }
  return parse_idx(bytes, path.string());
}

}  // namespace cajal::io
