// The run configuration's segmentation keys: crop, percentile normalisation, postprocessing.
#include <gtest/gtest.h>

#include "core/error.h"
#include "models/model.h"
#include "models/model_spec.h"
#include "test_support.h"

namespace cajal::models {
namespace {

nlohmann::json spec_with_run(nlohmann::json run) {
  return {{"format", "cajal-model"},
          {"format_version", 1},
          {"inputs", {"x"}},
          {"outputs", {"r"}},
          {"layers", {{{"name", "r"}, {"type", "relu"}, {"inputs", {"x"}}}}},
          {"run", std::move(run)}};
}

nlohmann::json base_run() {
  return {{"input_channels", 1}, {"spatial_dims", 3}, {"labels", {"background", "liver"}}};
}

void expect_error(nlohmann::json run, const std::string& words) {
  try {
    parse_model_spec(spec_with_run(std::move(run)), "model.json");
    ADD_FAILURE() << "no error; expected one naming " << words;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(RunConfig, ReadsCropPercentileNormalisationAndPostprocessing) {
  auto run = base_run();
  run["crop"] = {{"kind", "body"}, {"threshold", -300}, {"margin_mm", 4}};
  run["normalization"] = {{"kind", "percentile"}, {"lower_percentile", 1}};
  run["postprocessing"] = {
      {"liver", {{"keep_largest_component", true}, {"min_component_mm3", 50}}}};
  const auto spec = parse_model_spec(spec_with_run(run), "model.json");
  EXPECT_EQ(spec.run.crop.kind, "body");
  EXPECT_EQ(spec.run.crop.threshold, -300);
  EXPECT_EQ(spec.run.crop.margin_mm, 4);
  EXPECT_EQ(spec.run.normalization.lower_percentile, 1);
  EXPECT_EQ(spec.run.normalization.upper_percentile, 99.5);
  ASSERT_EQ(spec.run.postprocessing.size(), 1u);
  EXPECT_TRUE(spec.run.postprocessing[0].keep_largest_component);
  EXPECT_FALSE(spec.run.postprocessing[0].fill_holes);
  EXPECT_EQ(spec.run.postprocessing[0].min_component_mm3, 50);
}

TEST(RunConfig, RejectsUnknownKeysAndValuesInTheNewSections) {
  auto run = base_run();
  run["postprocessing"] = {{"liver", {{"largest", true}}}};
  expect_error(run, "unknown key 'largest'");
  run["postprocessing"] = {{"spleen", {{"fill_holes", true}}}};
  expect_error(run, "label 'spleen'");
  run["postprocessing"] = {{"background", {{"fill_holes", true}}}};
  expect_error(run, "label 'background'");
  run["postprocessing"] = {{"liver", {{"fill_holes", 1}}}};
  expect_error(run, "true or false");
  run.erase("postprocessing");
  run["crop"] = {{"kind", "bbox"}};
  expect_error(run, "'bbox'");
  run["crop"] = {{"kind", "foreground"}, {"threshold", 0}};
  expect_error(run, "unknown key 'threshold'");
  run.erase("crop");
  run["normalization"] = {
      {"kind", "percentile"}, {"lower_percentile", 60}, {"upper_percentile", 40}};
  expect_error(run, "lower_percentile < upper_percentile");
}

TEST(RunConfig, ModalityIsStatedOrTakenFromACtWindow) {
  auto run = base_run();
  EXPECT_EQ(parse_model_spec(spec_with_run(run), "model.json").run.modality, "");
  run["modality"] = "MR";
  EXPECT_EQ(parse_model_spec(spec_with_run(run), "model.json").run.modality, "MR");
  run.erase("modality");
  run["normalization"] = {
      {"kind", "ct"}, {"clip_min", -1000}, {"clip_max", 1000}, {"mean", 0}, {"std", 500}};
  EXPECT_EQ(parse_model_spec(spec_with_run(run), "model.json").run.modality, "CT");
  run["modality"] = "PET";
  expect_error(run, "modality");
}

TEST(RunConfig, TinySegmentationFixtureLoads) {
  const auto model = Model::load(testing::tiny_model_dir());
  const auto& run = model.spec().run;
  EXPECT_EQ(run.labels, (std::vector<std::string>{"background", "bone", "air"}));
  EXPECT_EQ(run.crop.kind, "body");
  EXPECT_EQ(run.normalization.kind, "ct");
  EXPECT_EQ(run.patch_size, (engine::Dims{8, 24, 24}));
}

}  // namespace
}  // namespace cajal::models
