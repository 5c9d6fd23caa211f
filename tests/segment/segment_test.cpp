#include "pipeline/segment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"

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
  models::RunConfig mr_model = ct_run();
  mr_model.normalization.kind = "zscore";
  EXPECT_TRUE(modality_warnings(mr_model, "MR", {0, 2400}).empty());
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
  const auto candidates = bundled_model_candidates();
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates[0].filename(), "ct-organs");
  EXPECT_EQ(candidates[0].parent_path().parent_path().parent_path().filename(), "share");
  EXPECT_EQ(candidates[1], std::filesystem::path(CAJAL_SOURCE_DIR) / "models" / "ct-organs");

  const auto empty = std::filesystem::temp_directory_path() / "cajal_no_models_here";
  std::filesystem::create_directories(empty);
  setenv("CAJAL_MODELS", empty.c_str(), 1);
  EXPECT_EQ(bundled_model_candidates(), std::vector<std::filesystem::path>{empty / "ct-organs"});
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

}  // namespace
}  // namespace cajal::pipeline
