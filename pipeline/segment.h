// `cajal segment`: a CT/MR study in, a label map on the input's own grid, per-structure masks,
// an auditable report.json, QA pictures and optionally RTSTRUCT/SEG out; one input or a batch.
// The command, the outputs and the report's schema: docs/segment.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/context.h"
#include "models/model.h"
#include "pipeline/batch.h"
#include "pipeline/bundled_model.h"
#include "pipeline/inference.h"
#include "pipeline/segment_report.h"

namespace cajal::pipeline {

struct SegmentOptions {
  std::filesystem::path model_dir;  // empty: the bundled CT model (kBundledSegmentModel)
  std::string series_uid;           // a DICOM input's series (or the reference series)
  InferenceOptions inference;
  int threads = 0;  // <= 0: all cores
  bool masks = false;
  bool qa = true;
  bool rtstruct = false;
  bool dicom_seg = false;
  // The series a non-DICOM input lies on, for rtstruct / dicom_seg.
  std::filesystem::path reference_dicom;
};

// A model loaded once for every case of a run, with the engine context that runs it.
struct SegmentModel {
  models::Model model;
  engine::Context context;
  ModelProvenance provenance;
};

// Loads and checks the model folder (an empty path: the bundled CT model, found as
// find_bundled_model says, or Error naming the places looked at). Throws the engine's Error when
// its spec and weights disagree, and Error when it is not a 3D segmentation model.
SegmentModel load_segment_model(const std::filesystem::path& model_dir, int threads);

// The structures of the model: label c >= 1 named run.labels[c].
std::vector<LabelName> model_structures(const models::RunConfig& run);

// Runs one case and writes its outputs into `case_dir`, an existing empty folder: labels.nii.gz,
// masks/ (with options.masks), qa/ (with options.qa), rtstruct.dcm / seg.dcm, and report.json
// last. Returns the report.
SegmentReport segment_case(SegmentModel& model, const std::filesystem::path& input,
                           const std::filesystem::path& case_dir, const SegmentOptions& options);

struct SegmentRequest {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path manifest;  // a CSV of id,path; excludes inputs
  std::filesystem::path outdir;
  SegmentOptions options;
};

struct SegmentOutcome {
  bool batch = false;  // several inputs or a manifest: one folder per case and a summary
  std::optional<SegmentReport> report;  // a single case
  BatchSummary summary;                 // a batch
};

// The whole command. The model is loaded before anything is written, so a bad model leaves
// OUTDIR untouched. A single case's error propagates (nothing left in OUTDIR); a batch records
// each case's error in its summary and goes on.
SegmentOutcome run_segment(const SegmentRequest& request);

// "2G", "512M", "1.5G", "64K", or a number of bytes; 1K = 1024 bytes. Throws Error otherwise.
std::int64_t parse_byte_size(const std::string& text);

// The warnings about an input's modality for a CT model (normalisation kind "ct"): a DICOM
// Modality other than CT, or an intensity range that is not CT's (minimum above -500 or maximum
// below 100: no air, or no tissue denser than water). Empty for other models.
std::vector<std::string> modality_warnings(const models::RunConfig& run,
                                           const std::string& dicom_modality,
                                           const core::IntensityRange& range);

}  // namespace cajal::pipeline
