// `cajal classify`: a classifier run over regions of CT/MR studies (the whole image, a box around
// a point, or the lesions of a mask), with softmax probabilities at the model's calibrated
// temperature, a report.json per case, a PNG per region and predictions.csv for the run; and
// temperature scaling fitted on labelled regions (--calibrate). See docs/classify.md.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/context.h"
#include "models/model.h"
#include "pipeline/batch.h"
#include "pipeline/classify_regions.h"
#include "pipeline/segment_report.h"

namespace cajal::pipeline {

inline constexpr const char* kClassifyReportSchema = "cajal.classify.report/1";
// Regions go through the network this many at a time; a last smaller batch is padded with zeros,
// so a region's logits do not depend on how many regions a case has.
inline constexpr std::int64_t kClassifyBatch = 16;

// A classification model loaded once for a run, its Net prepared for kClassifyBatch regions.
struct ClassifyModel {
  models::Model model;
  engine::Context context;
  ModelProvenance provenance;
  std::filesystem::path dir;
  double temperature = 1;  // from <dir>/calibration.json, else 1
};

// Loads and checks the model folder: task "classification", at least two labels, a patch_size
// and target_spacing of spatial_dims numbers. Error otherwise. An empty `dir` is the bundled
// lesion classifier (pipeline/bundled_model.h).
ClassifyModel load_classify_model(const std::filesystem::path& dir, int threads);

// The temperature in <dir>/calibration.json ({"temperature": T > 0, ...}), or 1 without the file.
double read_temperature(const std::filesystem::path& model_dir);

// The logits of each crop (crop_region's tensors), one vector of classes per crop.
std::vector<std::vector<float>> run_classifier(ClassifyModel& model,
                                               const std::vector<engine::Tensor>& crops);

// softmax(logits / temperature), computed in double.
std::vector<double> softmax(const std::vector<float>& logits, double temperature);

struct ClassifyOptions {
  std::filesystem::path model_dir;   // empty: the bundled lesion classifier
  int threads = 0;                   // <= 0: all cores
  std::filesystem::path roi;         // a mask on the input's grid (one input)
  MaskRegionOptions mask;            // --label, --margin
  std::optional<core::Vec3> centre;  // --center, mm LPS
  core::Vec3 size_mm{0, 0, 0};       // --size
  bool png = true;
};

// One case: its regions' crops and logits (probabilities follow from the temperature), and the
// report's input and provenance blocks.
struct ClassifiedCase {
  std::string id;
  std::vector<Region> regions;
  std::vector<engine::Tensor> crops;
  std::vector<std::vector<float>> logits;
  nlohmann::json input;
  std::vector<std::pair<std::string, double>> timings_seconds;
};

// Reads the input (and its mask), cuts the regions and runs the network; writes nothing.
ClassifiedCase classify_case(ClassifyModel& model, const BatchCase& c,
                             const ClassifyOptions& options);

// report.json of a classified case at `temperature`.
nlohmann::json classify_report(const ClassifiedCase& c, const ClassifyModel& model,
                               double temperature);

// The rows of predictions.csv (header included) for these cases.
std::string predictions_csv(const std::vector<const ClassifiedCase*>& cases,
                            const models::RunConfig& run, double temperature);

// Temperature scaling (Guo et al. 2017).
struct CalibrationFit {
  double temperature = 1;
  std::int64_t regions = 0;
  double nll_before = 0;  // at T = 1
  double nll_after = 0;
  double ece_before = 0;  // 10 equal-width confidence bins
  double ece_after = 0;
};
// Mean negative log-likelihood of softmax(logits / T) for the true classes.
double mean_nll(const std::vector<std::vector<float>>& logits, const std::vector<int>& labels,
                double temperature);
// Expected calibration error of the top-class confidence, `bins` equal-width bins over [0, 1].
double expected_calibration_error(const std::vector<std::vector<float>>& logits,
                                  const std::vector<int>& labels, double temperature,
                                  int bins = 10);
// T in [0.05, 20] minimising mean_nll: golden-section search on log T (deterministic).
CalibrationFit fit_temperature(const std::vector<std::vector<float>>& logits,
                               const std::vector<int>& labels);

struct ClassifyRequest {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path manifest;
  std::filesystem::path outdir;
  std::filesystem::path calibrate;  // a TRUTH.csv (id,label); empty: no calibration
  ClassifyOptions options;
};

struct ClassifyOutcome {
  bool batch = false;
  BatchSummary summary;                 // a batch
  std::vector<nlohmann::json> reports;  // the cases that succeeded
  double temperature = 1;
  std::optional<CalibrationFit> calibration;
  std::int64_t unmatched_regions = 0;  // with --calibrate: regions without a truth row
};

// The whole command. The model is loaded before anything is written; with --calibrate every
// case is classified first, the temperature fitted and stored, then the outputs written at it.
ClassifyOutcome run_classify(const ClassifyRequest& request);

}  // namespace cajal::pipeline
