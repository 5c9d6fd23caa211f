// Preprocessing for segmentation, nnU-Net style: the model's run configuration (models::RunConfig)
// applied to an input volume in steps, each recorded in a typed struct so that restore_labels()
// can undo them in reverse and put a label map exactly back on the input's own grid.
//
// The steps, in order (a step that has nothing to do is not recorded):
//   reorient   axis permutation and flips only (exact, no interpolation) toward the model's
//              orientation; an oblique input stays oblique, with the nearest axis order
//   crop       to the body (CT: largest component above a threshold) or the foreground, plus a
//              margin; index arithmetic only
//   normalise  ct (clip, then fixed mean/std), zscore, percentile (clip, then z-score)
//   resample   to the target spacing: trilinear for the image; labels coming back by the largest
//              trilinear weight (resample_labels_linear)
//   pad        up to the patch size where the image is smaller
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "models/model_spec.h"

namespace cajal::pipeline {

struct ReorientStep {
  core::Geometry before;
  core::Geometry after;
  std::array<int, 3> source_axis{0, 1, 2};        // the input axis that output axis a reads
  std::array<bool, 3> flip{false, false, false};  // output axis a runs against source_axis[a]
};

struct CropStep {
  core::Geometry before;
  core::Geometry after;
  std::string kind;      // body | foreground
  core::Index3 begin{};  // voxel index range [begin, end) of `before` that was kept
  core::Index3 end{};
};

struct NormalizeStep {
  std::string kind;     // ct | zscore | percentile
  double clip_min = 0;  // the bounds used (ct: configured; percentile: the image's)
  double clip_max = 0;
  bool clipped = false;
  double mean = 0;  // subtracted, then divided by std
  double std = 1;
};

struct ResampleStep {
  core::Geometry before;
  core::Geometry after;  // same direction; spacing = target; same centre of the field of view
};

struct PadStep {
  core::Geometry before;
  core::Geometry after;
  core::Index3 lower{};  // voxels added before index 0 along each axis
  core::Index3 upper{};  // and after the last
  float value = 0;       // the padded image value (the image's minimum after normalisation)
};

using PreprocessStep = std::variant<ReorientStep, CropStep, NormalizeStep, ResampleStep, PadStep>;

// What each step did, in order, so restore_labels() can undo them in reverse (nnU-Net style).
struct PreprocessRecord {
  core::Geometry input;   // the input's own grid
  core::Geometry output;  // the preprocessed image's grid
  std::vector<PreprocessStep> steps;
};
nlohmann::json to_json(const PreprocessRecord& record);

struct PreprocessedImage {
  core::Volume image;  // float32, on the model's grid (orientation, spacing, crop), normalised
  PreprocessRecord record;
};

// Applies the model's run configuration to an input volume. Throws Error for a run
// configuration it cannot apply (2D target spacing on a volume, several input channels).
PreprocessedImage preprocess(const core::Volume& input, const models::RunConfig& run);

// A label map on the input's grid taken through the same steps as the image (reorientation, crop,
// nearest-neighbour resampling, padding with 0; normalisation skipped), so that it lies voxel for
// voxel on record.output: the training targets of `cajal train`'s volume data. Throws Error when
// `labels` is not on record.input.
core::Volume preprocess_labels(const core::Volume& labels, const PreprocessRecord& record);

// A label map on the preprocessed grid back onto the input's own grid (resampling by
// resample_labels_linear, exact elsewhere; voxels outside any crop are background). Result: same
// size, spacing, origin, direction as the input, pixel_type uint8 (or uint16 when labels exceed
// 255). Throws Error when `labels` is not on record.output.
core::Volume restore_labels(const core::Volume& labels, const PreprocessRecord& record);

// The reorientation alone: the permutation and flips that bring `geometry` closest to the
// three-letter `orientation` (for oblique directions: the assignment of axes with the largest
// sum of |cosines|). Exposed for tests and QA.
ReorientStep plan_reorientation(const core::Geometry& geometry, const std::string& orientation);
core::Volume apply_reorientation(const core::Volume& volume, const ReorientStep& step);
// The inverse: a volume on step.after back onto step.before, exactly.
core::Volume undo_reorientation(const core::Volume& volume, const ReorientStep& step);

}  // namespace cajal::pipeline
