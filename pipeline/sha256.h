// SHA-256 (FIPS 180-4) of bytes and files, as lower-case hex: the fingerprints of input pixels
// and model weights in the segmentation report.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace cajal::pipeline {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  // The digest as 64 lower-case hex digits; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  evp_md_ctx_st* context_;  // OpenSSL's EVP_MD_CTX
  bool finished_ = false;
};

std::string sha256_hex(std::string_view bytes);
// Throws Error when the file cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace cajal::pipeline
