#include "pipeline/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace cajal::pipeline {

// OpenSSL's SHA-256 (libcrypto, a dependency of DCMTK): it uses the CPU's SHA extensions where
// there are some (about 10x the plain C rounds on the EPYC here: 150 MB of CT pixels in about
// 0.1 s instead of 1.1 s).
Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  CAJAL_CHECK(context_ != nullptr && EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) == 1)
      << "OpenSSL SHA-256 could not be set up";
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(context_);
}

void Sha256::update(const void* data, std::size_t size) {
  CAJAL_CHECK(!finished_) << "Sha256::update after hex_digest";
  CAJAL_CHECK(EVP_DigestUpdate(context_, data, size) == 1) << "OpenSSL SHA-256 update failed";
}

std::string Sha256::hex_digest() {
  CAJAL_CHECK(!finished_) << "Sha256::hex_digest called twice";
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  CAJAL_CHECK(EVP_DigestFinal_ex(context_, digest.data(), &length) == 1 && length == 32)
      << "OpenSSL SHA-256 final failed";
  finished_ = true;
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += digits[digest[i] >> 4];
    hex += digits[digest[i] & 0xf];
  }
  return hex;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  return hash.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("'" + path.string() + "'", "a readable file", "a file that cannot be opened");
  }
  Sha256 hash;
  std::vector<char> chunk(1 << 16);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash.update(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    throw Error("'" + path.string() + "'", "a readable file", "a read error");
  }
  return hash.hex_digest();
}

}  // namespace cajal::pipeline
