#include "pipeline/evaluate.h"

#include <string>

#include <gtest/gtest.h>

namespace cajal::pipeline {
namespace {

// One label scored in both maps and one in neither: distances that do not exist are null in
// JSON and empty in CSV, never 0 or a made-up number.
EvaluationReport make_report() {
  EvaluationReport report{"pred.nii.gz", "ref.nii.gz", {}};
  LabelMetrics scored;
  scored.label = {1, "Liver, left lobe"};
  scored.presence = LabelPresence::both;
  scored.dice = 0.5;
  scored.volume_difference_percent = -10.0;
  scored.distances = SurfaceDistances{};
  scored.distances->hd95 = 3.5;
  LabelMetrics absent;
  absent.label = {7, ""};
  report.evaluation.labels = {scored, absent};
  report.evaluation.tolerance_mm = 2;
  report.evaluation.only_in_ref = {9};
  return report;
}

TEST(EvaluateReport, JsonHasNullsForDistancesThatDoNotExist) {
  const nlohmann::ordered_json json = to_json(make_report());
  EXPECT_EQ(json["labels"][0]["hd95_mm"], 3.5);
  EXPECT_EQ(json["labels"][0]["volume_difference_percent"], -10.0);
  EXPECT_TRUE(json["labels"][1]["hd95_mm"].is_null());
  EXPECT_TRUE(json["labels"][1]["assd_mm"].is_null());
  EXPECT_TRUE(json["labels"][1]["directed"].is_null());
  EXPECT_TRUE(json["labels"][1]["volume_difference_percent"].is_null());
  EXPECT_EQ(json["labels"][1]["presence"], "neither");
  EXPECT_EQ(json["labels_only_in_ref"], nlohmann::ordered_json::array({9}));
}

TEST(EvaluateReport, CsvQuotesNamesAndLeavesMissingValuesEmpty) {
  const std::string csv = to_csv(make_report());
  const std::size_t first = csv.find('\n') + 1;
  const std::size_t second = csv.find('\n', first) + 1;
  EXPECT_EQ(csv.substr(first, second - first),
            "1,\"Liver, left lobe\",both,0,0,0,0.5,3.5,0,0,1,2,0,0,0,-10,0,0,0,0\n");
  EXPECT_EQ(csv.substr(second), "7,,neither,0,0,0,1,,,,1,2,0,0,0,,,,,\n");
}

}  // namespace
}  // namespace cajal::pipeline
