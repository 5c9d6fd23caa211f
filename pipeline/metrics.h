// Agreement between a predicted and a reference segmentation, per label: overlap, surface
// distances and volumes. Pure functions over volumes on one grid; definitions, and how they
// differ from plastimatch's, in docs/metrics.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"

namespace cajal::pipeline {

struct LabelSpec {
  std::int64_t value = 0;
  std::string name;  // may be empty
};

// Parses "5" or "5=Liver" (a non-zero integer label, optionally named); throws Error otherwise.
LabelSpec parse_label_spec(const std::string& text);

enum class LabelPresence { both, only_in_pred, only_in_ref, neither };
std::string to_string(LabelPresence presence);

// A statistic of the distances from one surface to the other, in both directions.
struct Directed {
  double pred_to_ref = 0;
  double ref_to_pred = 0;
};

// Distances in mm between the surfaces of two non-empty masks. A mask's surface is its voxels
// with a 6-neighbour outside the mask or outside the image; distances run between voxel centres.
struct SurfaceDistances {
  double hausdorff = 0;  // largest distance from either surface to the other
  double hd95 = 0;       // larger of the two directed 95th percentiles
  double assd = 0;       // mean over the voxels of both surfaces
  Directed max;
  Directed p95;   // 95th percentile, linear between closest ranks (numpy's default)
  Directed mean;  // plastimatch's "average (boundary)" is the mean of these two
  std::int64_t pred_surface_voxels = 0;
  std::int64_t ref_surface_voxels = 0;
};

struct LabelMetrics {
  LabelSpec label;
  LabelPresence presence = LabelPresence::neither;
  std::int64_t pred_voxels = 0;
  std::int64_t ref_voxels = 0;
  std::int64_t overlap_voxels = 0;
  double pred_volume_ml = 0;
  double ref_volume_ml = 0;
  double volume_difference_ml = 0;                  // pred - ref
  std::optional<double> volume_difference_percent;  // relative to ref; none when ref is empty
  double dice = 1;                                  // 1 when both are empty
  // Share of both surfaces within the tolerance of the other: 1 when both masks are empty, 0
  // when one is.
  double surface_dice = 1;
  std::optional<SurfaceDistances> distances;  // only when both masks have voxels
};

// Compares two binary masks on the same grid: non-zero voxels are foreground. `tolerance_mm`
// is the surface Dice tolerance. Throws Error when the grids differ or the tolerance is negative.
LabelMetrics compare_masks(const core::Volume& pred, const core::Volume& ref, double tolerance_mm);

struct EvaluationOptions {
  std::vector<LabelSpec> labels;  // empty: every non-zero label found in either image
  double tolerance_mm = 2.0;
};

struct Evaluation {
  core::Geometry geometry;
  double tolerance_mm = 0;
  std::vector<LabelMetrics> labels;
  std::vector<std::int64_t> pred_labels;   // every non-zero label in pred, ascending
  std::vector<std::int64_t> ref_labels;    // every non-zero label in ref, ascending
  std::vector<std::int64_t> only_in_pred;  // of those, the labels missing from the other
  std::vector<std::int64_t> only_in_ref;
};

// Compares two label maps on the same grid, label by label. Voxel values must be integers.
// Throws Error on different grids, non-integer voxels, a duplicate or zero label, or a negative
// tolerance.
Evaluation evaluate_segmentation(const core::Volume& pred, const core::Volume& ref,
                                 const EvaluationOptions& options);

// Throws Error naming the first of size, spacing, origin and direction that differs (spacing and
// origin by more than 1e-3 mm, a direction cosine by more than 1e-4: core::same_grid's
// tolerances), with the reference's value as expected and the prediction's as got.
void check_same_grid(const core::Geometry& pred, const core::Geometry& ref);

}  // namespace cajal::pipeline
