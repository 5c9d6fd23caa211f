#include "pipeline/sha256.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

// FIPS 180-4 example vectors (NIST CSRC "SHA256.pdf", "SHA256_2.pdf").
TEST(Sha256, MatchesNistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, GivesTheSameDigestForAnyChunking) {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += static_cast<char>(i * 7 + 3);
  }
  for (std::size_t chunk : {1, 3, 55, 56, 63, 64, 65, 200}) {
    Sha256 hash;
    for (std::size_t p = 0; p < text.size(); p += chunk) {
      const std::string part = text.substr(p, chunk);
      hash.update(part.data(), part.size());
    }
    EXPECT_EQ(hash.hex_digest(), sha256_hex(text)) << "chunk " << chunk;
  }
}

TEST(Sha256, HashesAFileAndRefusesAMissingOne) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("cajal_sha256_test_" + std::to_string(getpid()) + ".bin");
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_EQ(sha256_file(path), sha256_hex("abc"));
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file(path), Error);
}

}  // namespace
}  // namespace cajal::pipeline
