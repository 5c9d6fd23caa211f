// What a model folder's JSON files say: model.json (the graph and the run configuration) and
// card.json (version, intended use, metrics, provenance). See docs/model-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/layer_type.h"
#include "engine/tensor.h"

namespace cajal::models {

inline constexpr int kFormatVersion = 1;

struct LayerSpec {
  std::string name;
  engine::LayerType type = engine::LayerType::relu;
  std::vector<std::string> inputs;
  std::string output;     // the blob it writes; defaults to the layer's name
  nlohmann::json params;  // checked by the layer's load_params
};

// How the image becomes the network's input: the pipeline reads this, the engine does not.
struct Normalization {
  // none | zscore (per image) | ct (clip, then fixed mean/std) | percentile (clip to the image's
  // own percentiles, then z-score)
  std::string kind = "none";
  double clip_min = 0.0;  // ct only
  double clip_max = 0.0;
  double mean = 0.0;
  double std = 1.0;
  double lower_percentile = 0.5;  // percentile only, in [0, 100)
  double upper_percentile = 99.5;
};

// Cropping before resampling, undone at the end (voxels outside the crop become background).
struct Crop {
  std::string kind = "none";  // none | body (CT: largest component above threshold) | foreground
  double threshold = -500.0;  // body only: HU above which a voxel is body
  double margin_mm = 10.0;    // added around the bounding box on every side
};

// What postprocessing does to one label, after inference and before restoring the input grid.
struct LabelPostprocessing {
  std::string label;  // a name in RunConfig::labels
  bool keep_largest_component = false;
  bool fill_holes = false;
  double min_component_mm3 = 0.0;  // components of this label smaller than this are dropped
};

// patch_size and target_spacing list the axes in the tensor's order (D, H, W): D is the slowest
// voxel axis of the model's grid (k), W the fastest (i). See docs/model-format.md.
struct RunConfig {
  std::string task = "segmentation";  // segmentation | classification
  std::int64_t input_channels = 1;
  std::int64_t spatial_dims = 3;       // 2 or 3
  engine::Dims patch_size;             // empty: the whole image at once
  std::vector<double> target_spacing;  // mm per axis; empty: keep the image's
  std::string orientation;             // three letters such as "RAS"; empty: keep
  Normalization normalization;
  Crop crop;
  std::vector<std::string> labels;                  // one name per output channel
  std::vector<LabelPostprocessing> postprocessing;  // at most one entry per label
  // Axes of the model's grid ("x", "y", "z": i, j, k in `orientation`) that test-time
  // augmentation may mirror: those the network was trained to see mirrored. Empty: no --tta.
  std::vector<std::string> mirror_axes;
  // The imaging modality the model was trained on: "CT", "MR", or empty (unstated; "CT" is
  // assumed when the normalisation is a CT window). Inputs of another modality get a warning.
  std::string modality;
};

struct ModelSpec {
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<LayerSpec> layers;
  RunConfig run;
};

struct ModelCard {
  std::string name;
  std::string version;
  std::string intended_use;
  nlohmann::json metrics;     // object: metric name -> number
  nlohmann::json provenance;  // object: where the weights come from
};

// Throw cajal::Error naming `source`, the key and the expected and actual values; unknown keys
// and layer types are rejected.
ModelSpec parse_model_spec(const nlohmann::json& doc, const std::string& source);
ModelCard parse_model_card(const nlohmann::json& doc, const std::string& source);

}  // namespace cajal::models
