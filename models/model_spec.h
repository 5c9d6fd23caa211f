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
  std::string kind = "none";  // none | zscore (per image) | ct (clip, then fixed mean/std)
  double clip_min = 0.0;      // ct only
  double clip_max = 0.0;
  double mean = 0.0;
  double std = 1.0;
};

struct RunConfig {
  std::string task = "segmentation";  // segmentation | classification
  std::int64_t input_channels = 1;
  std::int64_t spatial_dims = 3;       // 2 or 3
  engine::Dims patch_size;             // empty: the whole image at once
  std::vector<double> target_spacing;  // mm per axis; empty: keep the image's
  std::string orientation;             // three letters such as "RAS"; empty: keep
  Normalization normalization;
  std::vector<std::string> labels;  // one name per output channel
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
