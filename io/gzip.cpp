#include "io/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "core/error.h"

namespace cajal::io {

struct GzipWriter::Coder {
  virtual ~Coder() = default;
  virtual void write(std::span<const std::uint8_t> bytes) = 0;
  virtual void finish() = 0;
};

namespace {

// A coder's file: opened at once, closed by close() (which reports a failed write) or, when the
// coder fails or is dropped first, by the destructor.
class OutputFile {
 public:
  explicit OutputFile(const std::filesystem::path& path)
      : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    if (file_ == nullptr) {
      throw Error("output '" + path.string() + "'", "a writable file", "cannot open");
    }
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (file_ != nullptr) {
      std::fclose(file_);
    }
  }

  const std::filesystem::path& path() const { return path_; }

  void write(const std::uint8_t* bytes, std::size_t count) {
    if (count > 0 && std::fwrite(bytes, 1, count, file_) != count) {
      throw full();
    }
  }

  void close() {
    if (std::fclose(std::exchange(file_, nullptr)) != 0) {
      throw full();
    }
  }

 private:
  Error full() const {
    return Error("output '" + path_.string() + "'", "written completely",
                 "a write error (disk full?)");
  }

  std::filesystem::path path_;
  std::FILE* file_;
};

// gzopen's settings: a gzip wrapper (window bits 15 + 16), memory level 8, the default strategy.
struct ZlibCoder final : GzipWriter::Coder {
  OutputFile file;
  z_stream stream{};
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(std::size_t{1} << 20);

  // (When the constructor throws, `file` is closed and no zlib stream is left.)
  ZlibCoder(const std::filesystem::path& to, int level) : file(to) {
    if (deflateInit2(&stream, level, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw Error("output '" + to.string() + "'", "zlib ready to compress", "deflateInit2 failed");
    }
  }
  ZlibCoder(const ZlibCoder&) = delete;
  ZlibCoder& operator=(const ZlibCoder&) = delete;
  ~ZlibCoder() override { deflateEnd(&stream); }

  // Runs deflate until it has taken all the input (or finished), writing what it makes.
  void pump(int flush) {
    int status = Z_OK;
    do {
      stream.next_out = out.data();
      stream.avail_out = static_cast<uInt>(out.size());
      status = deflate(&stream, flush);
      if (status == Z_STREAM_ERROR) {
        throw Error("output '" + file.path().string() + "'", "compressed", "a zlib error");
      }
      file.write(out.data(), out.size() - stream.avail_out);
    } while (stream.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
  }

  void write(std::span<const std::uint8_t> bytes) override {
    // avail_in is 32 bits wide: a gigabyte at a time.
    constexpr std::size_t kPiece = std::size_t{1} << 30;
    for (std::size_t at = 0; at < bytes.size(); at += kPiece) {
      stream.next_in = const_cast<Bytef*>(bytes.data() + at);
      stream.avail_in = static_cast<uInt>(std::min(kPiece, bytes.size() - at));
      pump(Z_NO_FLUSH);
    }
  }

  void finish() override {
    stream.avail_in = 0;
    pump(Z_FINISH);
    file.close();
  }
};

// A code of deflate's fixed Huffman tables (RFC 1951, 3.2.6) with any extra bits after it, as
// they go into the stream: bits taken from the lowest first, Huffman codes reversed.
struct Bits {
  std::uint32_t value = 0;
  int count = 0;
};

std::uint32_t reversed(std::uint32_t code, int length) {
  std::uint32_t out = 0;
  for (int b = 0; b < length; ++b) {
    out |= ((code >> b) & 1u) << (length - 1 - b);
  }
  return out;
}

// Literal or length symbol 0-287.
Bits fixed_symbol(int symbol) {
  if (symbol < 144) {
    return {reversed(0x30u + static_cast<std::uint32_t>(symbol), 8), 8};
  }
  if (symbol < 256) {
    return {reversed(0x190u + static_cast<std::uint32_t>(symbol - 144), 9), 9};
  }
  if (symbol < 280) {
    return {reversed(static_cast<std::uint32_t>(symbol - 256), 7), 7};
  }
  return {reversed(0xC0u + static_cast<std::uint32_t>(symbol - 280), 8), 8};
}

struct FixedTables {
  std::array<Bits, 256> literal;
  std::array<Bits, 259> length;  // 3-258: symbol and extra bits
  std::array<Bits, 9> distance;  // 1-8: code and extra bits
  FixedTables() {
    for (int v = 0; v < 256; ++v) {
      literal[static_cast<std::size_t>(v)] = fixed_symbol(v);
    }
    constexpr std::array<int, 29> kLengthBase = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                                 15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                                 67, 83, 99, 115, 131, 163, 195, 227, 258};
    constexpr std::array<int, 29> kLengthExtra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    for (int code = 0; code < 29; ++code) {
      const auto c = static_cast<std::size_t>(code);
      const int last = code == 28 ? 258 : kLengthBase[c + 1] - 1;
      for (int n = kLengthBase[c]; n <= std::min(last, 258); ++n) {
        const Bits symbol = fixed_symbol(257 + code);
        length[static_cast<std::size_t>(n)] = {
            symbol.value | (static_cast<std::uint32_t>(n - kLengthBase[c]) << symbol.count),
            symbol.count + kLengthExtra[c]};
      }
    }
    constexpr std::array<int, 6> kDistanceBase = {1, 2, 3, 4, 5, 7};
    constexpr std::array<int, 6> kDistanceExtra = {0, 0, 0, 0, 1, 1};
    for (int code = 0; code < 6; ++code) {
      const auto c = static_cast<std::size_t>(code);
      for (int d = kDistanceBase[c]; d < kDistanceBase[c] + (1 << kDistanceExtra[c]); ++d) {
        distance[static_cast<std::size_t>(d)] = {
            reversed(static_cast<std::uint32_t>(code), 5) |
                (static_cast<std::uint32_t>(d - kDistanceBase[c]) << 5),
            5 + kDistanceExtra[c]};
      }
    }
  }
};

const FixedTables& fixed_tables() {
  static const FixedTables tables;
  return tables;
}

struct RepeatCoder final : GzipWriter::Coder {
  OutputFile file;
  std::size_t distance = 1;
  const FixedTables* tables = &fixed_tables();
  uLong crc = crc32(0, nullptr, 0);
  std::uint64_t size = 0;
  std::array<std::uint8_t, 8> tail{};       // the last `distance` bytes, oldest first
  std::uint64_t run = 0;                    // bytes repeating, not yet coded
  std::array<std::uint8_t, 2> run_start{};  // the first two of them
  std::uint64_t bits = 0;
  int count = 0;
  std::vector<std::uint8_t> out;

  RepeatCoder(const std::filesystem::path& to, int repeat_distance)
      : file(to), distance(static_cast<std::size_t>(repeat_distance)) {
    CAJAL_CHECK(repeat_distance >= 1 && repeat_distance <= 8)
        << "repeat distance " << repeat_distance;
    // gzip header: deflate, no name or time stamp, Unix; then a block of fixed codes, not last.
    out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    put({2, 3});
  }
  RepeatCoder(const RepeatCoder&) = delete;
  RepeatCoder& operator=(const RepeatCoder&) = delete;

  void put(Bits code) {
    bits |= static_cast<std::uint64_t>(code.value) << count;
    count += code.count;
    if (count >= 32) {
      for (int b = 0; b < 4; ++b) {
        out.push_back(static_cast<std::uint8_t>(bits >> (8 * b)));
      }
      bits >>= 32;
      count -= 32;
    }
  }

  void flush_out() {
    file.write(out.data(), out.size());
    out.clear();
  }

  void flush_out_when_full() {
    if (out.size() >= (std::size_t{1} << 20)) {
      flush_out();
    }
  }

  void match(std::uint64_t length) {
    put(tables->length[static_cast<std::size_t>(length)]);
    put(tables->distance[distance]);
  }

  // The pending run, coded: a match when it is 3 bytes or more, else its bytes as literals.
  void end_run() {
    if (run >= 3) {
      match(run);
    } else {
      for (std::uint64_t r = 0; r < run; ++r) {
        put(tables->literal[run_start[r]]);
      }
    }
    run = 0;
  }

  // One more byte: `repeats` when it equals the byte `distance` before it.
  void add(std::uint8_t byte, bool repeats) {
    if (repeats) {
      if (run < 2) {
        run_start[run] = byte;
      }
      if (++run == 258) {
        match(258);
        run = 0;
      }
      return;
    }
    end_run();
    put(tables->literal[byte]);
  }

  void code(const std::uint8_t* data, std::size_t n) {
    const std::size_t d = distance;
    std::size_t p = 0;
    // The first `distance` bytes compare with the end of what came before.
    for (; p < n && p < d; ++p) {
      add(data[p], size + p >= d && data[p] == tail[p]);  // tail[p]: the byte d before
    }
    for (; p < n; flush_out_when_full()) {
      // Within a run, eight bytes at a time while they all repeat.
      std::size_t q = p;
      for (std::uint64_t now = 0, then = 0;
           run >= 2 && q + 8 <= n &&
           (std::memcpy(&now, data + q, 8), std::memcpy(&then, data + q - d, 8), now == then);
           q += 8) {
      }
      if (q > p) {
        run += q - p;
        for (; run >= 258; run -= 258) {
          match(258);
        }
        for (std::uint64_t r = 0; run < 3 && r < run; ++r) {
          run_start[r] = data[q - run + r];  // a run of 258 ended among the last bytes
        }
        p = q;
        continue;
      }
      add(data[p], data[p] == data[p - d]);
      ++p;
    }
    // Keep the last d bytes (some may come from the tail when n < d).
    std::array<std::uint8_t, 16> joined{};
    std::copy_n(tail.begin(), d, joined.begin());
    const std::size_t take = std::min(n, d);
    std::copy_n(data + n - take, take, joined.begin() + static_cast<std::ptrdiff_t>(d));
    std::copy_n(joined.begin() + static_cast<std::ptrdiff_t>(take), d, tail.begin());
  }

  void write(std::span<const std::uint8_t> bytes) override {
    constexpr std::size_t kPiece = std::size_t{1} << 30;  // crc32's length is 32 bits wide
    for (std::size_t at = 0; at < bytes.size(); at += kPiece) {
      const std::size_t n = std::min(kPiece, bytes.size() - at);
      crc = crc32(crc, bytes.data() + at, static_cast<uInt>(n));
      code(bytes.data() + at, n);
      size += n;
    }
  }

  void finish() override {
    end_run();
    put(fixed_symbol(256));  // end of block
    put({3, 3});             // the last block: fixed codes,
    put(fixed_symbol(256));  // empty; then the last byte padded with zero bits
    for (; count > 0; bits >>= 8, count = std::max(0, count - 8)) {
      out.push_back(static_cast<std::uint8_t>(bits));
    }
    for (int b = 0; b < 4; ++b) {
      out.push_back(static_cast<std::uint8_t>(crc >> (8 * b)));
    }
    for (int b = 0; b < 4; ++b) {
      out.push_back(static_cast<std::uint8_t>(size >> (8 * b)));
    }
    flush_out();
    file.close();
  }
};

}  // namespace

GzipWriter::GzipWriter(std::unique_ptr<Coder> coder) : coder_(std::move(coder)) {}
GzipWriter::GzipWriter(GzipWriter&& other) noexcept = default;
GzipWriter& GzipWriter::operator=(GzipWriter&& other) noexcept = default;
GzipWriter::~GzipWriter() = default;

GzipWriter GzipWriter::zlib(const std::filesystem::path& to, int level) {
  return GzipWriter(std::make_unique<ZlibCoder>(to, level));
}

GzipWriter GzipWriter::repeats(const std::filesystem::path& to, int distance) {
  return GzipWriter(std::make_unique<RepeatCoder>(to, distance));
}

void GzipWriter::write(std::span<const std::uint8_t> bytes) {
  CAJAL_CHECK(coder_ != nullptr) << "gzip written after finish()";
  coder_->write(bytes);
}

void GzipWriter::finish() {
  CAJAL_CHECK(coder_ != nullptr) << "gzip finished twice";
  std::exchange(coder_, nullptr)->finish();
}

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> packed, const std::string& source,
                                 std::size_t max_bytes) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    throw Error(source + ": gzip stream", "zlib to start", "inflateInit2 failed");
  }
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(std::size_t{1} << 20);
  stream.next_in = const_cast<Bytef*>(packed.data());
  stream.avail_in = static_cast<uInt>(packed.size());
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    stream.next_out = chunk.data();
    stream.avail_out = static_cast<uInt>(chunk.size());
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      inflateEnd(&stream);
      throw Error(source + ": gzip data", "a complete deflate stream",
                  stream.msg != nullptr ? stream.msg : "truncated or damaged data");
    }
    const auto produced = chunk.size() - stream.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&stream);
      throw Error(source + ": decompressed size", "at most " + std::to_string(max_bytes) + " bytes",
                  "more");
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(produced));
  }
  inflateEnd(&stream);
  return out;
}

std::string gunzip_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error("file '" + path.string() + "'", "readable", "cannot open");
  }
  const std::vector<std::uint8_t> packed((std::istreambuf_iterator<char>(file)),
                                         std::istreambuf_iterator<char>());
  if (file.bad()) {
    throw Error("file '" + path.string() + "'", "readable bytes", "a read error");
  }
  const std::vector<std::uint8_t> bytes =
      gunzip(packed, path.string(), std::numeric_limits<std::size_t>::max());
  return {bytes.begin(), bytes.end()};
}

}  // namespace cajal::io
