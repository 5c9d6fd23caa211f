// gzip files with zlib: cajal's own compression of the .nii.gz it writes, and reading one back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace cajal::io {

// One gzip member written as its bytes come, with fixed header fields and no time stamp: the
// same bytes in, in any pieces, give the same file. Throws cajal::Error when the file cannot be
// opened or a write fails (disk full). A writer destroyed before finish() leaves a partial file,
// for its caller to remove.
class GzipWriter {
 public:
  // zlib at `level` (1-9) with gzopen's settings: the bytes gzopen and gzwrite would write.
  static GzipWriter zlib(const std::filesystem::path& to, int level);
  // For bytes that mostly repeat the byte `distance` (1-8) before them, as label maps and masks
  // do (runs of one value; `distance` is the size of a pixel): several times faster than zlib at
  // level 1 and smaller. cajal's own deflate coder: one stream of deflate's fixed Huffman codes,
  // each byte a literal unless it repeats the byte `distance` before, repeats as matches at that
  // distance (a run of 258 bytes in 13 bits). Any bytes come back exactly; bytes that do not
  // repeat cost 8 or 9 bits each.
  static GzipWriter repeats(const std::filesystem::path& to, int distance);

  GzipWriter(GzipWriter&& other) noexcept;
  GzipWriter& operator=(GzipWriter&& other) noexcept;
  ~GzipWriter();

  void write(std::span<const std::uint8_t> bytes);
  // Ends the member and closes the file.
  void finish();

  struct Coder;  // the two ways, in gzip.cpp

 private:
  explicit GzipWriter(std::unique_ptr<Coder> coder);
  std::unique_ptr<Coder> coder_;
};

// The decompressed bytes of one gzip member held in memory; `source` names it in errors. Input is
// treated as hostile: throws cajal::Error when the stream is damaged or cut short, or when it
// would decompress to more than `max_bytes`.
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> packed, const std::string& source,
                                 std::size_t max_bytes);

// gunzip() of a whole file, without a size limit. Throws cajal::Error when the file cannot be
// read or is not one complete gzip member.
std::string gunzip_file(const std::filesystem::path& path);

}  // namespace cajal::io
