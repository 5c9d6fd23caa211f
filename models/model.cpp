#include "models/model.h"

#include <fstream>
#include <utility>

#include "core/error.h"
#include "models/safetensors.h"

namespace cajal::models {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) {
    throw Error("'" + path.string() + "'", "a readable file", "none");
  }
  try {
    return nlohmann::json::parse(file);
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + path.string() + "'", "valid JSON", e.what());
  }
}

std::vector<engine::Node> make_nodes(const ModelSpec& spec, engine::Backend backend) {
  std::vector<engine::Node> nodes;
  for (const auto& layer : spec.layers) {
    auto made = engine::create_layer(layer.type, layer.name, backend);
    made->load_params(layer.params);
    nodes.push_back({std::move(made), layer.inputs, layer.output});
  }
  return nodes;
}

Model::Model(ModelSpec spec, ModelCard card, engine::Net net)
    : spec_(std::move(spec)), card_(std::move(card)), net_(std::move(net)) {}

Model Model::load(const std::filesystem::path& dir, engine::Backend backend,
                  engine::NetOptions options) {
  const auto spec_path = dir / "model.json";
  auto spec = parse_model_spec(read_json_file(spec_path), spec_path.string());
  const auto card_path = dir / "card.json";
  auto card = parse_model_card(read_json_file(card_path), card_path.string());
  engine::Net net(spec.inputs, make_nodes(spec, backend), spec.outputs, options);
  net.load_weights(read_safetensors(dir / "weights.safetensors"));
  return Model(std::move(spec), std::move(card), std::move(net));
}

}  // namespace cajal::models
