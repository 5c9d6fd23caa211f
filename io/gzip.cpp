#include "io/gzip.h"

#include <zlib.h>

#include <cstdio>
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

std::string gunzip_file(const std::filesystem::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw Error("file '" + path.string() + "'", "readable", "cannot open");
  }
  std::string bytes;
  std::vector<char> chunk(std::size_t{1} << 20);
  int got = 0;
  while ((got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
    bytes.append(chunk.data(), static_cast<std::size_t>(got));
  }
  // A stream cut short reads as data then end of file; gzclose says so (Z_BUF_ERROR).
  const bool corrupt = got < 0;
  const bool cut_short = gzclose(file) != Z_OK;
  if (corrupt || cut_short) {
    throw Error("gzip file '" + path.string() + "'", "a complete gzip stream", "corrupt data");
  }
  return bytes;
}

}  // namespace cajal::io
