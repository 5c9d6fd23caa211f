#include "io/npy.h"

#include <bit>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace cajal::io {
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "the .npy code assumes a little-endian host");

namespace {

constexpr std::uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kMagicSize = sizeof(kMagic);
constexpr std::int64_t kMaxDim = std::int64_t{1} << 40;

struct DtypeInfo {
  const char* descr;
  const char* name;
  std::size_t itemsize;
};
constexpr DtypeInfo kDtypes[] = {
    {"<f4", "float32", 4}, {"<f8", "float64", 8}, {"<i2", "int16", 2}, {"|u1", "uint8", 1}};
constexpr const char* kDtypeChoices =
    "one of '<f4', '<f8', '<i2', '|u1' (little-endian float32, float64, int16, uint8)";

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string source)
      : text_(text), source_(std::move(source)) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
  };

  Header parse() {
    Header header;
    bool has_descr = false;
    bool has_fortran = false;
    bool has_shape = false;
    skip_space();
    expect('{', "the header dict's '{'");
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = parse_string("a quoted key");
      skip_space();
      expect(':', "':' after key '" + key + "'");
      skip_space();
      if (key == "descr") {
        check_unique(has_descr, key);
        header.descr = parse_string("a quoted dtype string");
      } else if (key == "fortran_order") {
        check_unique(has_fortran, key);
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        check_unique(has_shape, key);
        header.shape = parse_shape();
      } else {
        fail("header key", "one of 'descr', 'fortran_order', 'shape'", "'" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("header", "',' or '}' after the value of '" + key + "'", found());
      }
    }
    skip_space();
    if (pos_ != text_.size()) {
      fail("header", "only spaces and a newline after the dict", found());
    }
    for (const auto& [present, key] :
         {std::pair{has_descr, "descr"}, std::pair{has_fortran, "fortran_order"},
          std::pair{has_shape, "shape"}}) {
      if (!present) {
        fail("header key '" + std::string(key) + "'", "present", "missing");
      }
    }
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& expected,
                         const std::string& got) const {
    throw Error(source_ + ": npy " + what, expected, got);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  std::string found() const {
    if (pos_ >= text_.size()) {
      return "the end of the header";
    }
    return "'" + std::string(text_.substr(pos_, 12)) + "' at header offset " + std::to_string(pos_);
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) {
      ++pos_;
    }
  }
  void expect(char c, const std::string& what) {
    if (peek() != c) {
      fail("header", what, found());
    }
    ++pos_;
  }
  void check_unique(bool& seen, const std::string& key) const {
    if (seen) {
      fail("header key '" + key + "'", "once", "a second time");
    }
    seen = true;
  }
  std::string parse_string(const std::string& what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') {
      fail("header", what, found());
    }
    const auto end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) {
      fail("header", what + " closed by " + quote, "the end of the header");
    }
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  bool parse_bool() {
    for (const auto& [word, value] : {std::pair{"False", false}, std::pair{"True", true}}) {
      const std::string_view w(word);
      if (text_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        return value;
      }
    }
    fail("fortran_order", "False or True", found());
  }
  std::int64_t parse_dim() {
    const auto start = pos_;
    std::int64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])) != 0) {
      value = value * 10 + (text_[pos_] - '0');
      if (value > kMaxDim) {
        fail("shape", "sizes up to " + std::to_string(kMaxDim), "a larger one");
      }
      ++pos_;
    }
    if (pos_ == start) {
      fail("shape", "a non-negative integer size", found());
    }
    return value;
  }
  std::vector<std::int64_t> parse_shape() {
    std::vector<std::int64_t> shape;
    expect('(', "a shape tuple such as (1, 1, 96, 96, 96)");
    skip_space();
    bool trailing_comma = false;
    while (peek() != ')') {
      shape.push_back(parse_dim());
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        skip_space();
      } else if (peek() != ')') {
        fail("shape", "',' or ')' after a size", found());
      }
    }
    if (shape.size() == 1 && !trailing_comma) {
      fail("shape", "a one-element tuple written '(n,)'", "'(" + std::to_string(shape[0]) + ")'");
    }
    ++pos_;
    return shape;
  }

  std::string_view text_;
  std::string source_;
  std::size_t pos_ = 0;
};

std::uint32_t read_le(std::span<const std::uint8_t> bytes, std::size_t offset, std::size_t size) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < size; ++i) {
    value |= static_cast<std::uint32_t>(bytes[offset + i]) << (8 * i);
  }
  return value;
}

template <typename T>
void convert(const std::uint8_t* src, std::vector<float>& dst) {
  for (std::size_t i = 0; i < dst.size(); ++i) {
    T value;
    std::memcpy(&value, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(value);
  }
}

}  // namespace

NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& source) {
  auto fail = [&](const std::string& what, const std::string& expected, const std::string& got) {
    throw Error(source + ": npy " + what, expected, got);
  };
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    fail("magic", "the bytes \\x93NUMPY at the start", "a file that does not start with them");
  }
  const unsigned major = bytes[kMagicSize];
  const unsigned minor = bytes[kMagicSize + 1];
  if ((major < 1 || major > 3) || minor != 0) {
    fail("version", "1.0, 2.0 or 3.0", std::to_string(major) + "." + std::to_string(minor));
  }
  const std::size_t length_size = major == 1 ? 2 : 4;
  const std::size_t header_start = kMagicSize + 2 + length_size;
  if (bytes.size() < header_start) {
    fail("header length", std::to_string(length_size) + " bytes",
         std::to_string(bytes.size() - kMagicSize - 2) + " bytes left in the file");
  }
  const std::size_t header_length = read_le(bytes, kMagicSize + 2, length_size);
  const std::size_t left = bytes.size() - header_start;
  if (header_length > left) {
    fail("header length", "at most the " + std::to_string(left) + " bytes left in the file",
         std::to_string(header_length));
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_start),
                              header_length);
  const auto header = HeaderParser(text, source).parse();

  const DtypeInfo* dtype = nullptr;
  for (const auto& candidate : kDtypes) {
    if (header.descr == candidate.descr) {
      dtype = &candidate;
    }
  }
  if (dtype == nullptr) {
    fail("dtype", kDtypeChoices, "'" + header.descr + "'");
  }
  if (header.fortran_order) {
    fail("fortran_order", "False (C order)", "True");
  }
  std::int64_t count = 1;
  for (const auto dim : header.shape) {
    if (dim != 0 && count > std::numeric_limits<std::int64_t>::max() / 8 / dim) {
      fail("shape", "at most 2^60 elements", shape_string(header.shape));
    }
    count *= dim;
  }
  const std::size_t data_bytes = static_cast<std::size_t>(count) * dtype->itemsize;
  const std::size_t data_left = left - header_length;
  if (data_bytes != data_left) {
    fail("data length",
         std::to_string(data_bytes) + " bytes (shape " + shape_string(header.shape) + " of " +
             dtype->name + ")",
         std::to_string(data_left) + " bytes");
  }
  NpyArray array;
  array.shape = header.shape;
  array.source_dtype = dtype->name;
  array.data.resize(static_cast<std::size_t>(count));
  const std::uint8_t* src = bytes.data() + header_start + header_length;
  switch (dtype->itemsize) {
    case 4:
      convert<float>(src, array.data);
      break;
    case 8:
      convert<double>(src, array.data);
      break;
    case 2:
      convert<std::int16_t>(src, array.data);
      break;
    default:
      convert<std::uint8_t>(src, array.data);
      break;
  }
  return array;
}

NpyArray read_npy(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error("input '" + path.string() + "'", "a readable .npy file",
                "a file that cannot be opened");
  }
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
  if (file.bad()) {
    throw Error("input '" + path.string() + "'", "a readable .npy file", "a read error");
  }
  return parse_npy(bytes, path.string());
}

std::vector<std::uint8_t> encode_npy(const std::vector<std::int64_t>& shape,
                                     std::span<const float> data) {
  std::int64_t count = 1;
  for (const auto dim : shape) {
    CAJAL_CHECK(dim >= 0) << "negative size in shape " << shape_string(shape);
    count *= dim;
  }
  CAJAL_CHECK(count == static_cast<std::int64_t>(data.size()))
      << "shape " << shape_string(shape) << " for " << data.size() << " values";
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Magic, version, length and header padded with spaces to a multiple of 64, ending in '\n'.
  const bool long_header = header.size() + 1 + kMagicSize + 4 > 65535;
  const std::size_t preamble = kMagicSize + 2 + (long_header ? 4 : 2);
  header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::vector<std::uint8_t> bytes(kMagic, kMagic + kMagicSize);
  bytes.push_back(long_header ? 2 : 1);
  bytes.push_back(0);
  for (std::size_t i = 0; i < (long_header ? 4u : 2u); ++i) {
    bytes.push_back(static_cast<std::uint8_t>((header.size() >> (8 * i)) & 0xff));
  }
  bytes.insert(bytes.end(), header.begin(), header.end());
  const auto* raw = reinterpret_cast<const std::uint8_t*>(data.data());
  bytes.insert(bytes.end(), raw, raw + data.size_bytes());
  return bytes;
}

void write_npy(const fs::path& path, const std::vector<std::int64_t>& shape,
               std::span<const float> data) {
  const auto bytes = encode_npy(shape, data);
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path temporary = folder / ("." + path.filename().string() + ".partial");
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw Error("output '" + path.string() + "'", "a writable file",
                  "a write error in '" + temporary.string() + "'");
    }
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw Error("output '" + path.string() + "'", "a file that can be replaced", error.message());
  }
}

}  // namespace cajal::io
