#include "pipeline/structure_names.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

TEST(ParseLabelNames, ReadsInlinePairs) {
  const std::vector<LabelName> names = parse_label_names("1=Lung_L, 2=Heart");
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1].label, 2);
  EXPECT_EQ(names[1].name, "Heart");
}

TEST(ParseLabelNames, RefusesRepeatedLabelsAndBadValues) {
  EXPECT_THROW(parse_label_names("1=A,1=B"), Error);
  EXPECT_THROW(parse_label_names("0=A"), Error);
  EXPECT_THROW(parse_label_names("x=A"), Error);
  EXPECT_THROW(parse_label_names("1=A\\B"), Error);
}

TEST(AnatomyCode, KnowsTg263OrgansAndNothingElse) {
  ASSERT_TRUE(anatomy_code("Lung_L").has_value());
  EXPECT_EQ(anatomy_code("Lung_L")->value, "44029006");
  EXPECT_EQ(anatomy_code("SpinalCord")->value, "2748008");
  EXPECT_FALSE(anatomy_code("Precentral_L").has_value());
  EXPECT_EQ(structure_color("Precentral_L", 3), structure_color("Other", 3));
}

}  // namespace
}  // namespace cajal::pipeline
