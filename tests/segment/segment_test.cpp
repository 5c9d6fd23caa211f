#include "pipeline/segment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(Segment, WithoutAModelNamesTheBundledPathAndSaysItIsNotBundled) {
  try {
    load_segment_model({}, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("models/ct-organs/"));
    EXPECT_THAT(e.what(), HasSubstr("not bundled"));
  }
}

}  // namespace
}  // namespace cajal::pipeline
