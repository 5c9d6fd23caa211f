#include "models/safetensors.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cajal::models {
namespace {

constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // as the safetensors library limits it
constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;

std::uint64_t read_u64_le(const std::string& bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return value;
}

engine::Dims parse_shape(const nlohmann::json& shape, const std::string& what) {
  if (!shape.is_array() || shape.size() > 8) {
    throw Error(what + ": shape", "an array of at most 8 sizes", shape.dump());
  }
  engine::Dims dims;
  std::int64_t count = 1;
  for (const auto& d : shape) {
    if (!d.is_number_unsigned() || d.get<std::uint64_t>() > std::uint64_t(kMaxElements)) {
      throw Error(what + ": shape", "sizes from 0 to 2^40", shape.dump());
    }
    dims.push_back(d.get<std::int64_t>());
    count *= std::max<std::int64_t>(dims.back(), 1);
    if (count > kMaxElements) {
      throw Error(what + ": shape", "at most 2^40 elements", shape.dump());
    }
  }
  return dims;
}

}  // namespace

engine::WeightMap parse_safetensors(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8) {
    throw Error(source + ": header length", "8 bytes", std::to_string(bytes.size()) + " bytes");
  }
  const std::uint64_t header_bytes = read_u64_le(bytes);
  const std::uint64_t left = bytes.size() - 8;
  if (header_bytes > left || header_bytes > kMaxHeaderBytes) {
    throw Error(source + ": header length",
                "at most " + std::to_string(std::min(left, kMaxHeaderBytes)) + " bytes",
                std::to_string(header_bytes));
  }
  const auto header = nlohmann::json::parse(
      bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_bytes), nullptr, false);
  if (!header.is_object()) {
    throw Error(source + ": header", "a JSON object", "something else");
  }
  const std::uint64_t data_begin = 8 + header_bytes;
  const std::uint64_t data_bytes = bytes.size() - data_begin;
  engine::WeightMap tensors;
  std::map<std::uint64_t, std::uint64_t> ranges;  // begin -> end, to find overlaps and holes
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      continue;
    }
    const std::string what = source + ": tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets") || entry.size() != 3) {
      throw Error(what, "an object with dtype, shape and data_offsets", entry.dump());
    }
    if (entry["dtype"] != "F32") {
      throw Error(what + ": dtype", "\"F32\"", entry["dtype"].dump());
    }
    const auto dims = parse_shape(entry["shape"], what);
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      throw Error(what + ": data_offsets", "two unsigned integers", offsets.dump());
    }
    const auto begin = offsets[0].get<std::uint64_t>();
    const auto end = offsets[1].get<std::uint64_t>();
    const auto expected = std::uint64_t(engine::element_count(dims)) * sizeof(float);
    if (begin > end || end > data_bytes) {
      throw Error(what + ": data_offsets", "0 <= begin <= end <= " + std::to_string(data_bytes),
                  offsets.dump());
    }
    if (end - begin != expected) {
      throw Error(what + ": data bytes",
                  std::to_string(expected) + " for shape " + engine::to_string(dims),
                  std::to_string(end - begin));
    }
    if (expected > 0) {
      ranges[begin] = end;
    }
    std::vector<float> values(static_cast<std::size_t>(engine::element_count(dims)));
    std::memcpy(values.data(), bytes.data() + data_begin + begin, expected);
    tensors[name] = engine::Tensor(dims, std::move(values));
  }
  std::uint64_t covered = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin != covered) {
      throw Error(
          source + ": data", "tensors packed without overlaps or holes",
          "a tensor at byte " + std::to_string(begin) + " after byte " + std::to_string(covered));
    }
    covered = end;
  }
  if (covered != data_bytes) {
    throw Error(source + ": data", std::to_string(covered) + " bytes of tensors",
                std::to_string(data_bytes) + " bytes");
  }
  return tensors;
}

engine::WeightMap read_safetensors(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error("weights file '" + path.string() + "'", "a readable file", "none");
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return parse_safetensors(contents.str(), path.string());
}

void write_safetensors(const std::filesystem::path& path, const engine::WeightMap& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const auto bytes = std::uint64_t(tensor.size()) * sizeof(float);
    header[name] = {
        {"dtype", "F32"}, {"shape", tensor.dims()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream file(path, std::ios::binary);
  std::uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) {
    file.put(static_cast<char>((length >> (8 * i)) & 0xff));
  }
  file << text;
  for (const auto& [name, tensor] : tensors) {
    file.write(reinterpret_cast<const char*>(tensor.data()),
               static_cast<std::streamsize>(tensor.size() * sizeof(float)));
  }
  if (!file) {
    throw Error("writing '" + path.string() + "'", "success", "an I/O error");
  }
}

}  // namespace cajal::models
