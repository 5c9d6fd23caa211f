#include "io/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "core/error.h"

namespace cajal::io {

// gzopen's settings: a gzip wrapper (window bits 15 + 16), memory level 8, the default strategy.
struct GzipWriter::State {
  std::filesystem::path path;
  std::FILE* file = nullptr;
  z_stream stream{};
  bool started = false;
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(std::size_t{1} << 20);

  ~State() {
    if (started) {
      deflateEnd(&stream);
    }
    if (file != nullptr) {
      std::fclose(file);
    }
  }

  // Runs deflate until it has taken all the input (or finished), writing what it makes.
  void pump(int flush) {
    int status = Z_OK;
    do {
      stream.next_out = out.data();
      stream.avail_out = static_cast<uInt>(out.size());
      status = deflate(&stream, flush);
      if (status == Z_STREAM_ERROR) {
        throw Error("output '" + path.string() + "'", "compressed", "a zlib error");
      }
      const std::size_t made = out.size() - stream.avail_out;
      if (made > 0 && std::fwrite(out.data(), 1, made, file) != made) {
        throw Error("output '" + path.string() + "'", "written completely",
                    "a write error (disk full?)");
      }
    } while (stream.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END));
  }
};

GzipWriter::GzipWriter(const std::filesystem::path& to, int level) : state_(new State) {
  state_->path = to;
  if (deflateInit2(&state_->stream, level, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw Error("output '" + to.string() + "'", "zlib ready to compress", "deflateInit2 failed");
  }
  state_->started = true;
  state_->file = std::fopen(to.c_str(), "wb");
  if (state_->file == nullptr) {
    throw Error("output '" + to.string() + "'", "a writable file", "cannot open");
  }
}

GzipWriter::~GzipWriter() = default;

void GzipWriter::write(std::span<const std::uint8_t> bytes) {
  CAJAL_CHECK(state_->file != nullptr) << "gzip written after finish()";
  // avail_in is 32 bits wide: a gigabyte at a time.
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t at = 0; at < bytes.size(); at += kPiece) {
    state_->stream.next_in = const_cast<Bytef*>(bytes.data() + at);
    state_->stream.avail_in = static_cast<uInt>(std::min(kPiece, bytes.size() - at));
    state_->pump(Z_NO_FLUSH);
  }
}

void GzipWriter::finish() {
  CAJAL_CHECK(state_->file != nullptr) << "gzip finished twice";
  state_->stream.avail_in = 0;
  state_->pump(Z_FINISH);
  std::FILE* file = std::exchange(state_->file, nullptr);
  if (std::fclose(file) != 0) {
    throw Error("output '" + state_->path.string() + "'", "written completely",
                "a write error (disk full?)");
  }
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
