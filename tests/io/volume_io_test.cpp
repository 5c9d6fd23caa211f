#include "io/volume_io.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cmath>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "io/gzip.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

class VolumeIo : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::path(::testing::TempDir()) /
              ("cajal_io_" +
               std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }

  // An oblique, anisotropic grid with distinct pixel values.
  static core::Volume sample(core::PixelType type) {
    core::Geometry g;
    g.size = {5, 4, 3};
    g.spacing = {0.75, 1.25, 2.5};
    g.origin = {-12.5, 30.25, 101.0};
    const double c = 0.8;
    const double s = 0.6;
    g.direction = {c, 0, -s, 0, 1, 0, s, 0, c};
    core::Volume v = core::make_volume(g, type);
    for (std::size_t i = 0; i < v.pixels.size(); ++i) {
      v.pixels[i] = static_cast<float>(static_cast<int>(i * 7) % 200 - 50);
    }
    if (type == core::PixelType::uint8 || type == core::PixelType::uint16) {
      for (float& p : v.pixels) {
        p += 50;
      }
    }
    return v;
  }

  std::size_t file_count() const {
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(folder_), fs::directory_iterator()));
  }

  fs::path folder_;
};

void expect_same(const core::Volume& a, const core::Volume& b) {
  EXPECT_EQ(a.geometry.size, b.geometry.size);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.geometry.origin[i], b.geometry.origin[i], 1e-4);
    EXPECT_NEAR(a.geometry.spacing[i], b.geometry.spacing[i], 1e-6);
  }
  for (int i = 0; i < 9; ++i) {
    EXPECT_NEAR(a.geometry.direction[i], b.geometry.direction[i], 1e-6) << "direction " << i;
  }
  EXPECT_EQ(a.pixel_type, b.pixel_type);
  EXPECT_EQ(a.pixels, b.pixels);
}

TEST_F(VolumeIo, NiftiRoundTripKeepsObliqueGeometryAndInt16Pixels) {
  const core::Volume v = sample(core::PixelType::int16);
  write_volume(v, folder_ / "v.nii.gz");
  expect_same(v, read_volume(folder_ / "v.nii.gz"));
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `bytes` as zlib's gzopen and gzwrite compress them at level 1.
std::string gzopen_level_1(const std::string& bytes) {
  const fs::path path =
      fs::path(::testing::TempDir()) / ("cajal_gzopen_" + std::to_string(getpid()));
  gzFile out = gzopen(path.c_str(), "wb1");
  EXPECT_NE(out, nullptr);
  EXPECT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  EXPECT_EQ(gzclose(out), Z_OK);
  const std::string packed = file_bytes(path);
  fs::remove(path);
  return packed;
}

// The .nii.gz is compressed by cajal, not ITK, from ITK's header for one slice and the voxels
// converted a block at a time: it must hold exactly the .nii that ITK writes of the whole volume
// (header and voxels), leave no temporary behind, and be the same bytes when written twice. An
// image (few voxels equal the one before) is the very bytes of that .nii gzipped by gzopen at
// level 1; a label map (runs) goes through the repeat coder instead.
// Pixel types of 1, 2 and 4 bytes, a single slice, and more voxels than one block of 2^18.
TEST_F(VolumeIo, NiftiGzHoldsExactlyTheUncompressedNifti) {
  std::vector<std::pair<core::Volume, bool>> volumes;  // and whether it is coded as runs
  for (const auto type : {core::PixelType::uint8, core::PixelType::int16, core::PixelType::uint16,
                          core::PixelType::float32, core::PixelType::int32}) {
    volumes.emplace_back(sample(type), false);
  }
  core::Volume single = sample(core::PixelType::int16);
  single.geometry.size[2] = 1;
  single.pixels.resize(20);
  volumes.emplace_back(single, false);
  const auto large = [](core::PixelType type, const auto& value) {
    core::Volume v = sample(type);
    v.geometry.size = {90, 70, 50};
    v.pixels.resize(90 * 70 * 50);
    for (std::size_t i = 0; i < v.pixels.size(); ++i) {
      v.pixels[i] = static_cast<float>(value(i));
    }
    return v;
  };
  volumes.emplace_back(large(core::PixelType::int16, [](std::size_t i) { return i * 7 % 2000; }),
                       false);
  volumes.emplace_back(large(core::PixelType::uint8, [](std::size_t i) { return i / 1000 % 12; }),
                       true);
  volumes.emplace_back(
      large(core::PixelType::uint16, [](std::size_t i) { return i / 999 % 3 * 300 + i / 5000; }),
      true);
  for (const auto& [v, runs] : volumes) {
    SCOPED_TRACE(core::to_string(v.pixel_type) + " " + std::to_string(v.pixels.size()));
    write_volume(v, folder_ / "v.nii");
    write_volume(v, folder_ / "v.nii.gz");
    const std::string plain = file_bytes(folder_ / "v.nii");
    ASSERT_GT(plain.size(), 352u);
    EXPECT_EQ(io::gunzip_file(folder_ / "v.nii.gz"), plain);
    EXPECT_EQ(file_count(), 2u);
    const std::string first = file_bytes(folder_ / "v.nii.gz");
    if (runs) {
      EXPECT_NE(first, gzopen_level_1(plain));
      EXPECT_LT(first.size(), plain.size() / 40);
    } else {
      EXPECT_EQ(first, gzopen_level_1(plain));
    }
    write_volume(v, folder_ / "v.nii.gz");
    EXPECT_EQ(file_bytes(folder_ / "v.nii.gz"), first);
    expect_same(v, read_volume(folder_ / "v.nii.gz"));
  }
}

// A volume whose pixels do not fill its grid is a bug in the caller: refused, nothing written.
TEST_F(VolumeIo, PixelsThatDoNotFillTheGridAreRefused) {
  core::Volume v = sample(core::PixelType::uint8);
  v.pixels.resize(10);
  for (const char* name : {"v.nii", "v.nii.gz", "v.nrrd"}) {
    EXPECT_ANY_THROW(write_volume(v, folder_ / name)) << name;
  }
  EXPECT_EQ(file_count(), 0u);
}

// NIfTI-1 holds sizes up to 32767: a longer axis is refused, naming the sizes, leaving nothing.
TEST_F(VolumeIo, NiftiGzOfASizeBeyondNifti1IsRefused) {
  for (const std::array<std::int64_t, 3>& size :
       {std::array<std::int64_t, 3>{32768, 2, 1}, {2, 1, 32768}}) {
    core::Volume v = sample(core::PixelType::uint8);
    v.geometry.size = size;
    v.pixels.assign(65536, 0.0f);
    try {
      write_volume(v, folder_ / "v.nii.gz");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("at most 32767 voxels along each axis"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(file_count(), 0u);
}

TEST_F(VolumeIo, TruncatedGzipIsAnErrorNotShortData) {
  write_volume(sample(core::PixelType::int16), folder_ / "v.nii.gz");
  const std::string whole = file_bytes(folder_ / "v.nii.gz");
  std::ofstream(folder_ / "cut.nii.gz", std::ios::binary) << whole.substr(0, whole.size() / 2);
  EXPECT_THROW(io::gunzip_file(folder_ / "cut.nii.gz"), Error);
  EXPECT_THROW(io::gunzip_file(folder_ / "missing.gz"), Error);
}

TEST_F(VolumeIo, NrrdRoundTripKeepsUint8LabelMap) {
  const core::Volume v = sample(core::PixelType::uint8);
  write_volume(v, folder_ / "labels.nrrd");
  expect_same(v, read_volume(folder_ / "labels.nrrd"));
}

TEST_F(VolumeIo, MhaRoundTripKeepsUint16AndFloat) {
  for (core::PixelType type : {core::PixelType::uint16, core::PixelType::float32}) {
    const core::Volume v = sample(type);
    write_volume(v, folder_ / "v.mha");
    expect_same(v, read_volume(folder_ / "v.mha"));
  }
}

TEST_F(VolumeIo, DetachedHeadersRoundTripAndLeaveOnlyHeaderAndData) {
  for (const char* name : {"v.mhd", "v.nhdr"}) {
    const core::Volume v = sample(core::PixelType::int16);
    write_volume(v, folder_ / name);
    expect_same(v, read_volume(folder_ / name));
  }
  EXPECT_EQ(file_count(), 4u);  // two headers and their data files, no staging folder
}

TEST_F(VolumeIo, ValueThatDoesNotFitThePixelTypeIsRefusedAndNothingIsLeft) {
  core::Volume v = sample(core::PixelType::uint8);
  v.pixels[3] = 300;
  EXPECT_THROW(write_volume(v, folder_ / "labels.nii.gz"), Error);
  EXPECT_EQ(file_count(), 0u);
}

TEST_F(VolumeIo, TheErrorNamesTheFirstValueThatDoesNotFitAndItsIndex) {
  // 40 x 30 x 20 voxels: values checked a block at a time, the misfits past the first block.
  core::Geometry g;
  g.size = {40, 30, 20};
  const auto error_for = [&](std::size_t index, float value, core::PixelType type) {
    core::Volume v = core::make_volume(g, type);
    for (std::size_t i = 0; i < v.pixels.size(); ++i) {
      v.pixels[i] = static_cast<float>(i % 7);
    }
    v.pixels[index] = value;
    v.pixels[index + 5000] = 1000;  // a later misfit, not the one named
    // Both ways of writing a NIfTI, each error naming the file asked for.
    std::string errors;
    for (const char* name : {"labels.nii", "labels.nii.gz"}) {
      try {
        write_volume(v, folder_ / name);
        errors += std::string(name) + ": no error\n";
      } catch (const Error& e) {
        const std::string what = e.what();
        const bool named = what.find("of '" + (folder_ / name).string() + "'") != std::string::npos;
        errors += std::string(name) + ": " + (named ? "" : "(another file named) ") + what + "\n";
      }
    }
    return errors;
  };
  const auto expect_twice = [](const std::string& errors, const std::string& part) {
    std::size_t count = 0;
    for (std::size_t at = errors.find(part); at != std::string::npos;
         at = errors.find(part, at + 1)) {
      ++count;
    }
    EXPECT_EQ(count, 2u) << "'" << part << "' in\n" << errors;
    EXPECT_EQ(errors.find("(another file named)"), std::string::npos) << errors;
  };
  expect_twice(error_for(9000, 256, core::PixelType::uint8), "index 9000 ");
  expect_twice(error_for(4095, -1, core::PixelType::uint8), "index 4095 ");
  expect_twice(error_for(4096, 2.5f, core::PixelType::int16), "2.5");
  expect_twice(error_for(12345, std::nanf(""), core::PixelType::int16), "index 12345 ");
  expect_twice(error_for(17, 40000, core::PixelType::int16), "an integer that fits int16");
  expect_twice(error_for(17, 40000, core::PixelType::int16), "index 17 ");
  EXPECT_EQ(file_count(), 0u);
  // Values that fit, the extremes of the type among them, come back as they were.
  core::Volume v = core::make_volume(g, core::PixelType::int16);
  for (std::size_t i = 0; i < v.pixels.size(); ++i) {
    v.pixels[i] = static_cast<float>(static_cast<int>(i * 37 % 65536) - 32768);
  }
  write_volume(v, folder_ / "v.nii");
  EXPECT_EQ(read_volume(folder_ / "v.nii").pixels, v.pixels);
}

TEST_F(VolumeIo, FailedWriteLeavesThePreviousFileUntouched) {
  const core::Volume good = sample(core::PixelType::int16);
  write_volume(good, folder_ / "v.nii");
  core::Volume bad = sample(core::PixelType::uint8);
  bad.pixels[0] = -1;
  EXPECT_THROW(write_volume(bad, folder_ / "v.nii"), Error);
  expect_same(good, read_volume(folder_ / "v.nii"));
  EXPECT_EQ(file_count(), 1u);
}

TEST_F(VolumeIo, OutputInMissingFolderIsAnError) {
  EXPECT_THROW(write_volume(sample(core::PixelType::int16), folder_ / "no" / "v.nii"), Error);
}

TEST_F(VolumeIo, UnknownOutputExtensionIsAnError) {
  EXPECT_THROW(write_volume(sample(core::PixelType::int16), folder_ / "v.png"), Error);
  EXPECT_FALSE(is_writable_volume_path("v.raw"));
  EXPECT_TRUE(is_writable_volume_path("V.NII.GZ"));
}

TEST_F(VolumeIo, MissingInputIsAnErrorNamingThePath) {
  try {
    read_volume(folder_ / "absent.nii");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.nii' does not exist"), std::string::npos)
        << e.what();
  }
}

TEST_F(VolumeIo, FileOfUnknownFormatIsAnError) {
  std::ofstream(folder_ / "notes.txt") << "not an image";
  EXPECT_THROW(read_volume(folder_ / "notes.txt"), Error);
}

TEST_F(VolumeIo, EmptyFolderIsAnError) {
  fs::create_directories(folder_ / "empty");
  EXPECT_THROW(read_volume(folder_ / "empty"), Error);
}

}  // namespace
}  // namespace cajal::io
