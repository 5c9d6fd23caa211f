#include "pipeline/segment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/volume_io.h"

namespace cajal::pipeline {
namespace {

using ::testing::HasSubstr;

TEST(Segment, ParsesMemorySizes) {
  EXPECT_EQ(parse_byte_size("2G"), 2LL << 30);
  EXPECT_EQ(parse_byte_size("512M"), 512LL << 20);
  EXPECT_EQ(parse_byte_size("1.5g"), 3LL << 29);
  EXPECT_EQ(parse_byte_size("64KB"), 64LL << 10);
  EXPECT_EQ(parse_byte_size("1000"), 1000);
  for (const char* bad : {"", "G", "2X", "2GG", "-1G", "0"}) {
    EXPECT_THROW(parse_byte_size(bad), Error) << bad;
  }
}

models::RunConfig ct_run() {
  models::RunConfig run;
  run.normalization.kind = "ct";
  run.modality = "CT";
  run.labels = {"background", "Liver", "Spleen"};
  return run;
}

TEST(Segment, WarnsWhenACtModelGetsSomethingElse) {
  EXPECT_TRUE(modality_warnings(ct_run(), "CT", {-1024, 1800}).empty());
  EXPECT_TRUE(modality_warnings(ct_run(), "", {-1000, 400}).empty());
  const auto mr = modality_warnings(ct_run(), "MR", {-1024, 1800});
  ASSERT_EQ(mr.size(), 1u);
  EXPECT_THAT(mr[0], HasSubstr("DICOM Modality is MR"));
  const auto range = modality_warnings(ct_run(), "", {0, 2400});
  ASSERT_EQ(range.size(), 1u);
  EXPECT_THAT(range[0], HasSubstr("span 0 to 2400"));
  models::RunConfig unstated = ct_run();
  unstated.normalization.kind = "zscore";
  unstated.modality.clear();
  EXPECT_TRUE(modality_warnings(unstated, "MR", {0, 2400}).empty());
  EXPECT_TRUE(modality_warnings(unstated, "CT", {-1024, 2400}).empty());
}

TEST(Segment, WarnsWhenAnMrModelGetsSomethingElse) {
  models::RunConfig mr_model = ct_run();
  mr_model.normalization.kind = "percentile";
  mr_model.modality = "MR";
  EXPECT_TRUE(modality_warnings(mr_model, "MR", {0, 2400}).empty());
  EXPECT_TRUE(modality_warnings(mr_model, "", {-12, 255}).empty());
  const auto ct = modality_warnings(mr_model, "CT", {-1024, 1800});
  ASSERT_EQ(ct.size(), 2u);
  EXPECT_THAT(ct[0], HasSubstr("expects MR but the DICOM Modality is CT"));
  EXPECT_THAT(ct[1], HasSubstr("span -1024 to 1800, as CT in HU does"));
  const auto range = modality_warnings(mr_model, "", {-1000, 400});
  ASSERT_EQ(range.size(), 1u);
  EXPECT_THAT(range[0], HasSubstr("expects MR"));
}

TEST(Segment, NamesStructuresAfterTheModelsLabels) {
  const auto names = model_structures(ct_run());
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].label, 1);
  EXPECT_EQ(names[0].name, "Liver");
  EXPECT_EQ(names[1].label, 2);
}

// Without --model: CAJAL_MODELS, when set, is the only place looked at; otherwise the installed
// share folder beside the binary, then the source tree. A missing model names where it looked.
TEST(Segment, BundledModelIsLookedForInCajalModelsThenBesideTheBinaryThenTheSourceTree) {
  const char* saved = std::getenv("CAJAL_MODELS");
  const std::string saved_value = saved != nullptr ? saved : "";
  unsetenv("CAJAL_MODELS");
  const auto candidates = bundled_model_candidates(kBundledSegmentModel);
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates[0].filename(), "ct-organs");
  EXPECT_EQ(candidates[0].parent_path().parent_path().parent_path().filename(), "share");
  EXPECT_EQ(candidates[1], std::filesystem::path(CAJAL_SOURCE_DIR) / "models" / "ct-organs");

  const auto empty = std::filesystem::temp_directory_path() / "cajal_no_models_here";
  std::filesystem::create_directories(empty);
  setenv("CAJAL_MODELS", empty.c_str(), 1);
  EXPECT_EQ(bundled_model_candidates(kBundledSegmentModel),
            std::vector<std::filesystem::path>{empty / "ct-organs"});
  try {
    load_segment_model({}, 1);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("models/ct-organs/"));
    EXPECT_THAT(e.what(), HasSubstr((empty / "ct-organs").string()));
  }
  if (saved != nullptr) {
    setenv("CAJAL_MODELS", saved_value.c_str(), 1);
  } else {
    unsetenv("CAJAL_MODELS");
  }
}

// The input's pixels are held as 16-bit integers (in a file) while the network runs (segment.cpp):
// an int16 input and its float32 copy (the same values, not packed) give the same label map, masks,
// QA pictures and structure statistics.
TEST(Segment, Int16InputGivesTheSameOutputsAsItsFloat32Copy) {
  namespace fs = std::filesystem;
  core::Geometry grid;
  grid.size = {40, 36, 16};
  grid.spacing = {2.0, 2.0, 2.5};
  grid.origin = {-40, -36, 0};
  core::Volume ct = core::make_volume(grid, core::PixelType::int16, -1000.0f);
  std::uint32_t state = 12345;
  for (std::int64_t k = 2; k < 14; ++k) {
    for (std::int64_t j = 6; j < 30; ++j) {
      for (std::int64_t i = 5; i < 35; ++i) {
        state = state * 1664525u + 1013904223u;
        const bool dense = (i - 20) * (i - 20) + (j - 18) * (j - 18) < 40;
        ct.pixels[static_cast<std::size_t>(i + 40 * (j + 36 * k))] =
            static_cast<float>((dense ? 60 : 0) + static_cast<int>(state >> 27));
      }
    }
  }
  const fs::path dir = fs::temp_directory_path() / "cajal_segment_packed_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  core::Volume as_float = ct;
  as_float.pixel_type = core::PixelType::float32;
  io::write_volume(ct, dir / "int16.nii.gz");
  io::write_volume(as_float, dir / "float32.nii.gz");

  SegmentModel model = load_segment_model(fs::path(CAJAL_SOURCE_DIR) / "models" / "ct-organs", 1);
  SegmentOptions options;
  options.masks = true;
  std::vector<SegmentReport> reports;
  for (const char* name : {"int16", "float32"}) {
    fs::create_directories(dir / name);
    reports.push_back(
        segment_case(model, dir / (std::string(name) + ".nii.gz"), dir / name, options));
  }
  EXPECT_EQ(reports[0].pixel_type, core::PixelType::int16);
  EXPECT_EQ(reports[1].pixel_type, core::PixelType::float32);
  ASSERT_EQ(reports[0].outputs, reports[1].outputs);
  const auto bytes = [](const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const std::string& file : reports[0].outputs) {
    if (file != "report.json") {
      EXPECT_EQ(bytes(dir / "int16" / file), bytes(dir / "float32" / file)) << file;
    }
  }
  ASSERT_EQ(reports[0].structures.size(), reports[1].structures.size());
  std::int64_t labelled = 0;
  for (std::size_t s = 0; s < reports[0].structures.size(); ++s) {
    EXPECT_EQ(to_json(reports[0].structures[s]), to_json(reports[1].structures[s]));
    labelled += reports[0].structures[s].voxel_count;
  }
  EXPECT_GT(labelled, 0);
  // The pixels held in a file of the case folder while the network ran are gone.
  for (const char* name : {"int16", "float32"}) {
    for (const auto& entry : fs::directory_iterator(dir / name)) {
      EXPECT_NE(entry.path().filename(), ".input_pixels.tmp") << name;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cajal::pipeline
