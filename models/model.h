// A model folder, loaded: model.json (graph and run configuration), weights.safetensors (named
// tensors in PyTorch's layout) and card.json, turned into an engine::Net with its weights.
#pragma once

#include <filesystem>
#include <vector>

#include "engine/layer_type.h"
#include "engine/net.h"
#include "models/model_spec.h"

namespace cajal::models {

class Model {
 public:
  // Reads and checks the three files; every layer takes its tensors by name and exact shape,
  // and a tensor no layer takes is an error. The Net still needs prepare() for input dims.
  static Model load(const std::filesystem::path& dir,
                    engine::Backend backend = engine::Backend::onednn,
                    engine::NetOptions options = {});

  const ModelSpec& spec() const { return spec_; }
  const ModelCard& card() const { return card_; }
  engine::Net& net() { return net_; }
  const engine::Net& net() const { return net_; }

 private:
  Model(ModelSpec spec, ModelCard card, engine::Net net);
  ModelSpec spec_;
  ModelCard card_;
  engine::Net net_;
};

// The spec's layers, made and with their params loaded, as a Net's nodes (no weights yet).
std::vector<engine::Node> make_nodes(const ModelSpec& spec,
                                     engine::Backend backend = engine::Backend::onednn);

// Reads a JSON file; throws cajal::Error with the path and the parser's message.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace cajal::models
