#include "pipeline/evaluate_classifier.h"

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace cajal::pipeline {
namespace {

const std::string kTruth = "id,label\nr1,benign\nr2,malignant\n";
const std::string kPredictions =
    "id,predicted,p_benign,p_malignant\nr1,benign,0.7,0.3\nr2,benign,0.6,0.4\n";

// The message of the Error that reading these files throws, or "" when none is thrown.
std::string error_of(const std::string& predictions, const std::string& truth = kTruth) {
  try {
    read_classifier_data(predictions, "pred.csv", truth, "truth.csv");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(ParseCsv, AcceptsBomCrlfQuotesAndEmptyLines) {
  const CsvTable table = parse_csv(
      "\xEF\xBB\xBFid,name\r\n\r\n\"a,1\",\"say \"\"hi\"\"\"\r\n  b , \"multi\nline\"\n\n",
      "t.csv");
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(table.rows[0], (std::vector<std::string>{"id", "name"}));
  EXPECT_EQ(table.rows[1], (std::vector<std::string>{"a,1", "say \"hi\""}));
  EXPECT_EQ(table.rows[2], (std::vector<std::string>{"b", "multi\nline"}));
  EXPECT_EQ(table.lines, (std::vector<int>{1, 3, 4}));
}

TEST(ParseCsv, RefusesAnUnterminatedQuoteNamingItsLine) {
  EXPECT_THROW(parse_csv("id\n\"open\n", "t.csv"), Error);
  try {
    parse_csv("id\nx\n\"open\n", "t.csv");
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "'t.csv' line 3: expected a closing quote, got the end of the file");
  }
  EXPECT_THROW(parse_csv("\"a\"b\n", "t.csv"), Error);
}

TEST(ReadClassifierData, MatchesRowsById) {
  const ClassifierData data = read_classifier_data(
      "p_malignant,id,predicted,p_benign,note\n0.4,r2,benign,0.6,x\n0.3,r1,benign,0.7,y\n",
      "pred.csv", kTruth, "truth.csv");
  EXPECT_EQ(data.classes, (std::vector<std::string>{"malignant", "benign"}));
  EXPECT_EQ(data.truth, (std::vector<int>{0, 1}));
  EXPECT_EQ(data.predicted, (std::vector<int>{1, 1}));
  EXPECT_EQ(data.probabilities[1], (std::vector<double>{0.3, 0.7}));
}

TEST(ReadClassifierData, NamesFileLineAndValueOfEachBadInput) {
  EXPECT_EQ(error_of(kPredictions + "r3,benign,0.5,0.5\n"),
            "'pred.csv' line 4: id 'r3': expected an id listed in 'truth.csv', got an id it does "
            "not list");
  EXPECT_EQ(error_of(kPredictions, kTruth + "r3,benign\n"),
            "'truth.csv' line 4: id 'r3': expected a prediction for it in 'pred.csv', got none");
  EXPECT_EQ(error_of(kPredictions, kTruth + "r3,cyst\n"),
            "'truth.csv' line 4: label: expected one of the classes of the p_<class> columns, "
            "got 'cyst'");
  EXPECT_EQ(error_of(kPredictions + "r1,benign,0.5,0.5\n"),
            "'pred.csv' line 4: id 'r1': expected each id once, got it again");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,benign,0.7,0.31\nr2,benign,0.6,0.4\n"),
            "'pred.csv' line 2: probabilities: expected a sum of 1 within 1e-3, got 1.010000");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,benign,0.7,0.3x\nr2,benign,0.6,0.4\n"),
            "'pred.csv' line 2: column 'p_malignant': expected a number in [0, 1], got '0.3x'");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,benign,1.2,-0.2\nr2,benign,0.6,0.4\n"),
            "'pred.csv' line 2: column 'p_benign': expected a number in [0, 1], got 1.2");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,benign,nan,0.3\nr2,benign,0.6,0.4\n"),
            "'pred.csv' line 2: column 'p_benign': expected a number in [0, 1], got 'nan'");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,cyst,0.7,0.3\nr2,benign,0.6,0.4\n"),
            "'pred.csv' line 2: predicted: expected one of the classes of the p_<class> columns, "
            "got 'cyst'");
  EXPECT_EQ(error_of("id,predicted,p_benign,p_malignant\nr1,benign,0.7\n"),
            "'pred.csv' line 2: expected 4 cells as in the header, got 3");
  EXPECT_EQ(error_of("id,p_benign,p_malignant\nr1,0.7,0.3\n"),
            "'pred.csv' line 1: header: expected a column 'predicted', got none");
  EXPECT_EQ(error_of("id,predicted,p_benign\nr1,benign,1\n"),
            "'pred.csv' line 1: header: expected a p_<class> column for each of at least two "
            "classes, got 1");
  EXPECT_EQ(error_of("", kTruth), "'pred.csv': expected a header line and rows, got an empty file");
}

TEST(ReadClassifierData, AcceptsProbabilitiesSummingToOneWithinTolerance) {
  EXPECT_EQ(
      error_of("id,predicted,p_benign,p_malignant\nr1,benign,0.7,0.3009\nr2,benign,0.6,0.4\n"), "");
}

TEST(ClassifierJson, WritesNullForMissingValuesAndTheFirstThreshold) {
  const ClassifierMetrics metrics = compute_classifier_metrics(
      read_classifier_data(kPredictions, "pred.csv", kTruth, "truth.csv"));
  const nlohmann::ordered_json json = to_json(metrics);
  EXPECT_EQ(json["accuracy"], 0.5);
  EXPECT_EQ(json["confusion_matrix"], nlohmann::ordered_json::parse("[[1,0],[1,0]]"));
  EXPECT_TRUE(json["per_class"][1]["sensitivity"].get<double>() == 0.0);
  EXPECT_TRUE(json["per_class"][0]["roc"]["thresholds"][0].is_null());
  EXPECT_TRUE(json["reliability"][0]["accuracy"].is_null());
  EXPECT_EQ(json["reliability"].size(), 15u);
}

TEST(ClassifierPlots, WritesRocAndReliabilityPictures) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "cajal_classifier_plots_test";
  std::filesystem::remove_all(dir);
  write_classifier_plots(compute_classifier_metrics(
                             read_classifier_data(kPredictions, "pred.csv", kTruth, "truth.csv")),
                         dir);
  EXPECT_GT(std::filesystem::file_size(dir / "roc.png"), 1000u);
  EXPECT_GT(std::filesystem::file_size(dir / "reliability.png"), 1000u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cajal::pipeline
