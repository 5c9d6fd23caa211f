// Segmentation inference on a preprocessed image: argmax labels on the image's grid.
//
// Three modes. `window`: nnU-Net's sliding windows of the model's patch size with Gaussian
// importance weighting (sigma = patch / 8), windows batched, per-class probabilities accumulated
// only over a band of patch depth along the slowest axis (planes no later window touches are
// reduced to labels at once). `whole`: the network over the whole image once (padded to its
// total stride). `slab`: the network over slabs along the slowest axis, each with a halo as deep
// as the receptive field rounded up to the total stride, slab edges aligned to the total stride,
// only each slab's core kept; gives the labels of `whole` with bounded memory. `whole` and `slab`
// need a network of local layers only (see analyse_locality); instance or group norm compute
// their statistics over what they see, so such networks run in windows of their patch size.
// `auto`: whole if it fits the memory limit, else slab, else window.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/volume.h"
#include "engine/context.h"
#include "models/model.h"
#include "models/model_spec.h"

namespace cajal::pipeline {

struct InferenceOptions {
  double overlap = 0.5;  // sliding-window overlap, [0, 1)
  bool tta = false;      // mirroring test-time augmentation over the model's mirror_axes
  // --memory-limit: what the process may hold while inference runs, counting `held_bytes`, the
  // preprocessed image, the label map, the padded copy of the image and the network's peak.
  std::int64_t memory_limit_bytes = 2LL << 30;
  std::int64_t held_bytes = 0;  // held by the caller meanwhile (its volumes, the program itself)
  std::string mode = "auto";    // auto | window | slab | whole
  std::int64_t max_batch = 4;   // windows per forward pass, at most
  std::int64_t slab_core_depth = 0;  // slab mode: core depth; 0: largest that fits
};

struct InferenceReport {     // for report.json
  std::string mode;          // the one chosen
  std::int64_t windows = 0;  // forward passes' worth of inputs (windows, slabs or 1), TTA included
  std::int64_t peak_bytes_planned = 0;
  nlohmann::json details;  // why this mode, batch, slab depth and halo, locality
};

struct InferenceResult {
  core::Volume labels;  // argmax labels (uint8) on the preprocessed image's grid
  InferenceReport report;
};

// Throws Error when `tta` is asked of a model whose run configuration allows no mirroring.
void check_tta(const models::RunConfig& run, bool tta);

// model: loaded with models::Model::load; the engine Context's thread count is set by the caller.
// `image` is the preprocessed image (one channel). Throws Error for an unknown mode, an overlap
// outside [0, 1), a mode the network cannot run in, or a model that is not 3D segmentation.
InferenceResult infer_labels(models::Model& model, const engine::Context& ctx,
                             const core::Volume& image, const InferenceOptions& options);

// Whether a network may run over any extent (all layers local) and how far its outputs look.
struct NetworkLocality {
  bool local = false;
  std::string reason;                                 // the first non-local layer, when not local
  std::array<std::int64_t, 3> total_stride{1, 1, 1};  // (D, H, W): product of down-samplings
  std::array<std::int64_t, 3> receptive_radius{0, 0, 0};  // (D, H, W) input voxels, upper bound
};
// From the model's graph (model.json): convolutions, pooling, transposed convolutions, batch
// norm with stored statistics, pointwise activations, softmax/argmax over channels, concat, add,
// upsample and dropout are local; instance norm, group norm, global pooling, linear and flatten
// are not.
NetworkLocality analyse_locality(const models::ModelSpec& spec);
nlohmann::json to_json(const NetworkLocality& locality);

// The window starts along one axis, nnU-Net's: ceil((size - patch) / (patch * (1 - overlap))) + 1
// steps spread evenly from 0 to size - patch. size >= patch.
std::vector<std::int64_t> window_starts(std::int64_t size, std::int64_t patch, double overlap);

}  // namespace cajal::pipeline
