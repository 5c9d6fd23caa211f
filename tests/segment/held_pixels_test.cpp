// The input's pixels held while the network runs (pipeline/held_pixels.h): written to the spill
// file as 16-bit integers a block at a time when every value packs, as floats otherwise (a value
// that does not pack in a later block included), kept in memory when the file cannot be written,
// and always put back bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "pipeline/held_pixels.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

// 70 x 70 x 60 voxels: more than one block of 2^18 values.
core::Volume ramp(core::PixelType type, float low) {
  core::Geometry grid;
  grid.size = {70, 70, 60};
  core::Volume volume = core::make_volume(grid, type);
  for (std::size_t v = 0; v < volume.pixels.size(); ++v) {
    volume.pixels[v] = low + static_cast<float>(v % 4001);
  }
  return volume;
}

// One folder per test and process: CTest runs these tests side by side, each emptying its folder.
fs::path spill_dir() {
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const fs::path dir =
      fs::temp_directory_path() / ("cajal_held_pixels_" + test + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Holds `volume` in `file`, checks how (spilled or in memory, packed or not, and the bytes of
// each), then takes and restores the pixels and compares them bit for bit.
void expect_held(const core::Volume& volume, const fs::path& file, bool spilled, bool packed) {
  const std::size_t count = volume.pixels.size();
  core::Volume input = volume;
  {
    HeldPixels held(input, file);
    EXPECT_EQ(held.spilled(), spilled);
    EXPECT_EQ(held.packed(), packed);
    const std::size_t size = packed ? 2 : 4;
    if (spilled) {
      ASSERT_TRUE(fs::exists(file));
      EXPECT_EQ(fs::file_size(file), count * size);
    }
    held.take(input);
    EXPECT_TRUE(input.pixels.empty());
    EXPECT_EQ(held.bytes(), spilled ? 0 : static_cast<std::int64_t>(count * size));
    held.restore(input);
    ASSERT_EQ(input.pixels.size(), count);
    EXPECT_EQ(std::memcmp(input.pixels.data(), volume.pixels.data(), count * sizeof(float)), 0);
  }
  EXPECT_FALSE(fs::exists(file)) << "the spill file outlives the held pixels";
}

TEST(HeldPixels, IntegerPixelsArePackedIntoTheFile) {
  const fs::path dir = spill_dir();
  expect_held(ramp(core::PixelType::int16, -1024.0f), dir / "int16.tmp", true, true);
  expect_held(ramp(core::PixelType::uint16, 61000.0f), dir / "uint16.tmp", true, true);
  expect_held(ramp(core::PixelType::float32, -1024.0f), dir / "float32.tmp", true, false);
  fs::remove_all(dir);
}

TEST(HeldPixels, AValueThatDoesNotPackInALaterBlockWritesFloats) {
  const fs::path dir = spill_dir();
  core::Volume volume = ramp(core::PixelType::int16, -1024.0f);
  volume.pixels.back() = 0.5f;
  expect_held(volume, dir / "fraction.tmp", true, false);
  volume.pixels.back() = -0.0f;  // comes back as +0.0 from an integer
  expect_held(volume, dir / "negative_zero.tmp", true, false);
  volume.pixels.back() = 40000.0f;  // beyond int16
  expect_held(volume, dir / "beyond.tmp", true, false);
  fs::remove_all(dir);
}

TEST(HeldPixels, KeptInMemoryWhenTheFileCannotBeWritten) {
  const fs::path nowhere = spill_dir() / "missing" / "pixels.tmp";
  expect_held(ramp(core::PixelType::int16, -1024.0f), nowhere, false, true);
  core::Volume fraction = ramp(core::PixelType::int16, -1024.0f);
  fraction.pixels.back() = 0.5f;
  expect_held(fraction, nowhere, false, false);
  expect_held(ramp(core::PixelType::float32, 0.25f), nowhere, false, false);
  fs::remove_all(nowhere.parent_path().parent_path());
}

}  // namespace
}  // namespace cajal::pipeline
