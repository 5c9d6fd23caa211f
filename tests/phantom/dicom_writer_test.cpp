#include "io/dicom_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/dicom_series.h"
#include "io/volume_io.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

class DicomWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() /
              ("cajal_dicom_writer_" +
               std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }
  fs::path folder_;
};

DicomSeriesInfo test_info() {
  DicomSeriesInfo info;
  info.patient_name = "TEST^WRITER";
  info.patient_id = "W1";
  info.study_uid = "2.25.1111";
  info.series_uid = "2.25.2222";
  info.frame_of_reference_uid = "2.25.3333";
  info.sop_instance_uid_prefix = "2.25.4444";
  info.study_date = "20260101";
  info.study_time = "120000";
  return info;
}

// A 7x5x4 volume of distinct whole HU values with the given direction.
core::Volume test_volume(const core::Mat3& direction) {
  core::Geometry g;
  g.size = {7, 5, 4};
  g.spacing = {0.7, 0.9, 2.5};
  g.origin = {-12.25, 30.5, -101.75};
  g.direction = direction;
  core::Volume volume = core::make_volume(g, core::PixelType::int16);
  for (std::size_t n = 0; n < volume.pixels.size(); ++n) {
    volume.pixels[n] = static_cast<float>(static_cast<int>(n * 37 % 3000) - 1024);
  }
  return volume;
}

// Compares two volumes voxel by voxel through physical space.
void expect_same_in_space(const core::Volume& a, const core::Volume& b) {
  ASSERT_EQ(a.geometry.voxel_count(), b.geometry.voxel_count());
  const core::Geometry& g = a.geometry;
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const core::Vec3 q = b.geometry.physical_to_index(g.index_to_physical(
            {static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)}));
        const auto r = [](double v) { return static_cast<std::int64_t>(std::lround(v)); };
        for (double v : q) {
          ASSERT_NEAR(v, std::round(v), 1e-4);
        }
        ASSERT_EQ(a.at(i, j, k), b.at(r(q[0]), r(q[1]), r(q[2]))) << i << "," << j << "," << k;
      }
    }
  }
}

TEST_F(DicomWriterTest, ReadsBackSameVoxelsAndGeometryForRightHandedDirections) {
  const core::Mat3 directions[] = {{1, 0, 0, 0, 1, 0, 0, 0, 1},     // LPS
                                   {-1, 0, 0, 0, -1, 0, 0, 0, 1},   // RAS
                                   {1, 0, 0, 0, 0, 1, 0, -1, 0},    // LIP (coronal)
                                   {0, 0, -1, 1, 0, 0, 0, -1, 0}};  // PIR (sagittal)
  int n = 0;
  for (const core::Mat3& direction : directions) {
    const core::Volume written = test_volume(direction);
    const fs::path out = folder_ / ("series" + std::to_string(n++));
    write_dicom_series(written, test_info(), out);
    const core::Volume read = read_volume(out);
    EXPECT_EQ(read.geometry.size, written.geometry.size);
    EXPECT_TRUE(core::same_grid(read.geometry, written.geometry, 1e-4))
        << core::orientation_code(direction) << ": origin "
        << core::to_string(read.geometry.origin);
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(read.geometry.spacing[c], written.geometry.spacing[c], 1e-6);
    }
    EXPECT_EQ(read.pixels, written.pixels) << core::orientation_code(direction);
    EXPECT_EQ(read.pixel_type, core::PixelType::int16);
  }
}

TEST_F(DicomWriterTest, LeftHandedDirectionComesBackReversedButInTheSamePlaces) {
  const core::Volume written = test_volume({1, 0, 0, 0, 1, 0, 0, 0, -1});  // LPI
  write_dicom_series(written, test_info(), folder_ / "series");
  const core::Volume read = read_volume(folder_ / "series");
  EXPECT_EQ(core::orientation_code(read.geometry.direction), "LPS");
  expect_same_in_space(written, read);
}

TEST_F(DicomWriterTest, TheSeriesRangeIsFoundSliceBySliceAsAWholeVolumePassFindsIt) {
  core::Volume written = test_volume({1, 0, 0, 0, 1, 0, 0, 0, 1});
  written.pixels[written.pixels.size() - 3] = 3071;  // the last slice holds the maximum
  written.pixels[7 * 5 + 2] = -2000;                 // the second the minimum
  write_dicom_series(written, test_info(), folder_ / "series");
  const DicomFolder folder = scan_dicom_folder(folder_ / "series");
  core::IntensityRange range{1, -1};
  const core::Volume read = read_dicom_series(choose_series(folder, ""), &range);
  EXPECT_EQ(range.min, -2000);
  EXPECT_EQ(range.max, 3071);
  EXPECT_EQ(read.pixel_type, core::PixelType::int16);  // narrowed from the rescaled int32
  EXPECT_EQ(core::intensity_range(read).min, range.min);
  EXPECT_EQ(core::intensity_range(read).max, range.max);
}

TEST_F(DicomWriterTest, RefusesAnExistingFolderAndLeavesNothingOnError) {
  const core::Volume volume = test_volume({1, 0, 0, 0, 1, 0, 0, 0, 1});
  fs::create_directories(folder_ / "exists");
  EXPECT_THROW(write_dicom_series(volume, test_info(), folder_ / "exists"), Error);
  core::Volume fractional = volume;
  fractional.pixels.back() = 0.5f;
  EXPECT_THROW(write_dicom_series(fractional, test_info(), folder_ / "bad"), Error);
  core::Volume too_big = volume;
  too_big.pixels.back() = 40000.0f;
  EXPECT_THROW(write_dicom_series(too_big, test_info(), folder_ / "bad"), Error);
  DicomSeriesInfo bad_uid = test_info();
  bad_uid.series_uid = "2.25.x";
  EXPECT_THROW(write_dicom_series(volume, bad_uid, folder_ / "bad"), Error);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(folder_)) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(left, std::vector<std::string>{"exists"});
}

}  // namespace
}  // namespace cajal::io
