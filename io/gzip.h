// gzip files with zlib: cajal's own compression of the .nii.gz it writes, and reading one back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace cajal::io {

// `from` compressed into `to` as one gzip member at zlib `level` (1-9), with fixed header fields
// and no time stamp: the same bytes in give the same file. Throws cajal::Error when either file
// cannot be opened or the write fails (disk full).
void gzip_file(const std::filesystem::path& from, const std::filesystem::path& to, int level);

// The decompressed bytes of one gzip member held in memory; `source` names it in errors. Input is
// treated as hostile: throws cajal::Error when the stream is damaged or cut short, or when it
// would decompress to more than `max_bytes`.
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> packed, const std::string& source,
                                 std::size_t max_bytes);

// gunzip() of a whole file, without a size limit. Throws cajal::Error when the file cannot be
// read or is not one complete gzip member.
std::string gunzip_file(const std::filesystem::path& path);

}  // namespace cajal::io
