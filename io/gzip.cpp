#include "io/gzip.h"

#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/error.h"

namespace cajal::io {

void gzip_file(const std::filesystem::path& from, const std::filesystem::path& to, int level) {
  std::FILE* in = std::fopen(from.c_str(), "rb");
  if (in == nullptr) {
    throw Error("file '" + from.string() + "'", "readable", "cannot open");
  }
  const std::string mode = "wb" + std::to_string(level);
  gzFile out = gzopen(to.c_str(), mode.c_str());
  if (out == nullptr) {
    std::fclose(in);
    throw Error("output '" + to.string() + "'", "a writable file", "cannot open");
  }
  gzbuffer(out, 1 << 20);
  std::vector<char> chunk(std::size_t{1} << 22);
  bool ok = true;
  std::size_t got = 0;
  while (ok && (got = std::fread(chunk.data(), 1, chunk.size(), in)) > 0) {
    ok = gzwrite(out, chunk.data(), static_cast<unsigned>(got)) == static_cast<int>(got);
  }
  ok = ok && std::ferror(in) == 0;
  std::fclose(in);
  if (gzclose(out) != Z_OK || !ok) {
    throw Error("output '" + to.string() + "'", "written completely", "a write error (disk full?)");
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
