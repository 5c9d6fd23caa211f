// gzip files with zlib: cajal's own compression of the .nii.gz it writes, and reading one back.
#pragma once

#include <filesystem>
#include <string>

namespace cajal::io {

// `from` compressed into `to` as one gzip member at zlib `level` (1-9), with fixed header fields
// and no time stamp: the same bytes in give the same file. Throws cajal::Error when either file
// cannot be opened or the write fails (disk full).
void gzip_file(const std::filesystem::path& from, const std::filesystem::path& to, int level);

// The decompressed bytes of a gzip file (a plain file is returned as it is, as zlib reads it).
// Throws cajal::Error when the file cannot be opened or is corrupt.
std::string gunzip_file(const std::filesystem::path& path);

}  // namespace cajal::io
