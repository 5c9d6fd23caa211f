// GzipWriter::repeats, cajal's own deflate coder (io/gzip.h): its stream decoded by zlib and by
// GNU gzip (an independent decoder) gives back every byte, whatever the bytes and however they
// are split.
#include "io/gzip.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::path(::testing::TempDir()) /
      ("cajal_gzip_" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
       std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What GNU gzip decompresses the file to.
std::string gnu_gunzip(const fs::path& path) {
  const std::string command = "gzip -dc < '" + path.string() + "'";
  std::FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buffer[65536];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    out.append(buffer, got);
  }
  EXPECT_EQ(pclose(pipe), 0) << "gzip -dc failed on " << path;
  return out;
}

std::vector<std::uint8_t> repeat_gzip(const std::vector<std::uint8_t>& data, int distance,
                                      const fs::path& path, const std::vector<std::size_t>& cuts) {
  GzipWriter writer = GzipWriter::repeats(path, distance);
  std::size_t at = 0;
  for (const std::size_t cut : cuts) {
    writer.write({data.data() + at, cut - at});
    at = cut;
  }
  writer.write({data.data() + at, data.size() - at});
  writer.finish();
  const std::string packed = file_bytes(path);
  return {packed.begin(), packed.end()};
}

// Byte sets that exercise every code: literals of 8 and 9 bits, runs of every length from 1 to
// past 2 x 258 at each distance (byte runs, and runs of 16-bit pixels whose bytes differ),
// repeats from the first bytes on.
std::vector<std::vector<std::uint8_t>> samples() {
  std::mt19937 random(11);
  std::vector<std::vector<std::uint8_t>> sets;
  sets.push_back({});
  sets.push_back({200});
  std::vector<std::uint8_t> noise(70000);
  for (auto& b : noise) {
    b = static_cast<std::uint8_t>(random());
  }
  sets.push_back(noise);
  std::vector<std::uint8_t> runs;
  for (int length = 1; length <= 600; ++length) {
    runs.insert(runs.end(), static_cast<std::size_t>(length),
                static_cast<std::uint8_t>(length % 3 == 0 ? 0 : 100 + length % 150));
  }
  sets.push_back(runs);
  std::vector<std::uint8_t> pixels;  // 16-bit labels with runs, little-endian
  for (int v = 0; v < 40000; ++v) {
    const int label = (v / 37) % 5 == 0 ? 300 + v / 1000 : (v / 37) % 5;
    pixels.push_back(static_cast<std::uint8_t>(label & 0xff));
    pixels.push_back(static_cast<std::uint8_t>(label >> 8));
  }
  sets.push_back(pixels);
  std::vector<std::uint8_t> wide;  // runs of 1 to 600 16-bit pixels whose two bytes differ
  for (int length = 1; length <= 600; ++length) {
    const int value = (0x1234 + 257 * length) & 0xffff;  // both bytes differ from the last run
    for (int n = 0; n < length; ++n) {
      wide.push_back(static_cast<std::uint8_t>(value & 0xff));
      wide.push_back(static_cast<std::uint8_t>(value >> 8));
    }
  }
  sets.push_back(wide);
  sets.push_back(std::vector<std::uint8_t>(1 << 20, 0));
  return sets;
}

TEST(GzipRepeats, ZlibAndGnuGzipGiveBackEveryByte) {
  const fs::path path = scratch("x.gz");
  for (const int distance : {1, 2, 3, 4, 6, 8}) {
    for (const auto& data : samples()) {
      SCOPED_TRACE("distance " + std::to_string(distance) + ", " + std::to_string(data.size()) +
                   " bytes");
      const auto packed = repeat_gzip(data, distance, path, {});
      EXPECT_EQ(gunzip(packed, "test", data.size() + 1), data);
      const std::string gnu = gnu_gunzip(path);
      EXPECT_TRUE(gnu == std::string(data.begin(), data.end()));
    }
  }
  fs::remove_all(path.parent_path());
}

TEST(GzipRepeats, ThePiecesDoNotChangeTheFile) {
  const fs::path path = scratch("x.gz");
  std::mt19937 random(5);
  for (const int distance : {1, 2, 4}) {
    for (const auto& data : samples()) {
      const auto whole = repeat_gzip(data, distance, path, {});
      std::vector<std::size_t> cuts;
      for (std::size_t at = 0; at < data.size();) {
        // Pieces of 0 to 700 bytes, short ones (below the distance) among them.
        at = std::min(data.size(), at + random() % 701);
        cuts.push_back(at);
      }
      EXPECT_EQ(repeat_gzip(data, distance, path, cuts), whole)
          << "distance " << distance << ", " << data.size() << " bytes";
    }
  }
  fs::remove_all(path.parent_path());
}

TEST(GzipRepeats, RunsCostThirteenBitsPer258Bytes) {
  const fs::path path = scratch("x.gz");
  const std::vector<std::uint8_t> zeros(10'000'000, 0);
  const auto packed = repeat_gzip(zeros, 1, path, {});
  EXPECT_LT(packed.size(), 10'000'000 / 258 * 13 / 8 + 40);
  EXPECT_EQ(gunzip(packed, "zeros", zeros.size()), zeros);
  fs::remove_all(path.parent_path());
}

}  // namespace
}  // namespace cajal::io
