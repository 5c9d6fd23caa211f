#include "pipeline/model_run.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "engine/context.h"
#include "io/npy.h"
#include "models/model.h"

namespace cajal::pipeline {
namespace {

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    text += (i > 0 ? separator : "") + items[i];
  }
  return text;
}

const std::string& single_input(const models::Model& model, const std::filesystem::path& dir) {
  const auto& inputs = model.spec().inputs;
  if (inputs.size() != 1) {
    throw Error("model '" + dir.string() + "' inputs", "exactly one input blob",
                std::to_string(inputs.size()) + " (" + join(inputs, ", ") + ")");
  }
  return inputs.front();
}

// [1, input_channels, patch_size...] from the run configuration.
engine::Dims default_input_shape(const models::Model& model, const std::filesystem::path& dir) {
  const auto& run = model.spec().run;
  if (run.patch_size.empty()) {
    throw Error("input shape of model '" + dir.string() + "'",
                "--input-shape N,C,... (the run configuration has no patch_size)", "none");
  }
  engine::Dims dims{1, run.input_channels};
  dims.insert(dims.end(), run.patch_size.begin(), run.patch_size.end());
  return dims;
}

std::string human_count(std::int64_t value) {
  static const char* const kUnits[] = {"", " k", " M", " G", " T"};
  double scaled = static_cast<double>(value);
  std::size_t unit = 0;
  while (scaled >= 1000.0 && unit + 1 < std::size(kUnits)) {
    scaled /= 1000.0;
    ++unit;
  }
  std::ostringstream text;
  text << std::setprecision(unit == 0 ? 0 : 3) << std::fixed << scaled << kUnits[unit];
  if (unit == 0) {
    text.str(std::to_string(value));
  }
  return text.str();
}

std::string human_bytes(std::int64_t bytes) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1024.0 * 1024.0)
       << " MiB";
  return text.str();
}

}  // namespace

std::vector<std::int64_t> parse_shape(const std::string& text) {
  std::vector<std::int64_t> shape;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    const bool digits =
        !item.empty() && item.size() <= 9 &&
        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoll(item) == 0) {
      throw Error("input shape '" + text + "'", "positive integers separated by commas",
                  "'" + item + "'");
    }
    shape.push_back(std::stoll(item));
  }
  if (shape.size() < 3 || shape.size() > 5 || text.back() == ',') {
    throw Error("input shape '" + text + "'", "N,C and 1 to 3 spatial sizes",
                std::to_string(shape.size()) + " sizes");
  }
  return shape;
}

ModelDescription describe_model(const std::filesystem::path& dir,
                                std::vector<std::int64_t> input_shape) {
  // The layers as model.json lists them: nothing folded or fused, every blob has its dims.
  auto listed = models::Model::load(dir, engine::Backend::reference,
                                    {.fold_batch_norm = false, .fuse_post_ops = false});
  const std::string input = single_input(listed, dir);
  if (input_shape.empty()) {
    input_shape = default_input_shape(listed, dir);
  }
  const engine::Context ctx(1);
  listed.net().prepare(ctx, {{input, input_shape}});

  ModelDescription description;
  description.path = dir.string();
  description.name = listed.card().name;
  description.version = listed.card().version;
  description.input = input;
  description.input_shape = input_shape;
  description.outputs = listed.spec().outputs;
  description.parameter_count = listed.net().parameter_count();
  for (const auto& node : listed.net().nodes()) {
    LayerDescription layer{.name = node.layer->name(),
                           .type = std::string(engine::layer_type_name(node.layer->type())),
                           .inputs = node.inputs,
                           .output = node.output,
                           .output_shape = listed.net().blob_dims(node.output),
                           .flops = node.layer->flops()};
    for (const auto& weight : node.layer->weight_specs()) {
      layer.parameter_count += engine::element_count(weight.dims);
    }
    description.layers.push_back(std::move(layer));
  }
  // As `model run` runs it: folded and fused, with the same buffer plan (the twins fold and fuse
  // as the oneDNN layers do, and build no primitives).
  auto fused = models::Model::load(dir, engine::Backend::reference);
  fused.net().prepare(ctx, {{input, input_shape}});
  description.flops = fused.net().flops();
  description.peak_activation_bytes =
      fused.net().activation_bytes() +
      engine::element_count(input_shape) * static_cast<std::int64_t>(sizeof(float));
  return description;
}

nlohmann::json to_json(const ModelDescription& description) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : description.layers) {
    layers.push_back({{"name", layer.name},
                      {"type", layer.type},
                      {"inputs", layer.inputs},
                      {"output", layer.output},
                      {"output_shape", layer.output_shape},
                      {"parameter_count", layer.parameter_count},
                      {"flops", layer.flops}});
  }
  return {{"path", description.path},
          {"name", description.name},
          {"version", description.version},
          {"input", description.input},
          {"input_shape", description.input_shape},
          {"outputs", description.outputs},
          {"layers", layers},
          {"parameter_count", description.parameter_count},
          {"flops", description.flops},
          {"peak_activation_bytes", description.peak_activation_bytes}};
}

std::string to_text(const ModelDescription& description) {
  std::vector<std::vector<std::string>> rows{
      {"layer", "type", "inputs -> output", "output shape", "params", "FLOPs"}};
  for (const auto& layer : description.layers) {
    rows.push_back({layer.name, layer.type, join(layer.inputs, ", ") + " -> " + layer.output,
                    engine::to_string(layer.output_shape), human_count(layer.parameter_count),
                    human_count(layer.flops)});
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  std::ostringstream text;
  text << "model: " << description.name << " " << description.version << " (" << description.path
       << ")\n"
       << "input: " << description.input << " " << engine::to_string(description.input_shape)
       << "\n\n";
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool numeric = c >= 4;
      text << (numeric ? std::right : std::left) << std::setw(static_cast<int>(width[c])) << row[c]
           << (c + 1 < row.size() ? "  " : "\n");
    }
  }
  text << "\noutputs: " << join(description.outputs, ", ") << "\n"
       << "parameters: " << description.parameter_count << " ("
       << human_count(description.parameter_count) << ")\n"
       << "FLOPs: " << description.flops << " (" << human_count(description.flops) << ")\n"
       << "peak activation memory: " << human_bytes(description.peak_activation_bytes)
       << " (planned buffers and the input)\n";
  return text.str();
}

void run_model(const ModelRunOptions& options) {
  auto array = io::read_npy(options.input);
  if (array.source_dtype != "float32") {
    core::log_warning("input '" + options.input.string() + "': converted " + array.source_dtype +
                      " to float32");
  }
  auto model = models::Model::load(options.model_dir);
  const std::string input = single_input(model, options.model_dir);
  const auto& outputs = model.spec().outputs;
  const std::string output_blob =
      options.output_blob.empty() ? outputs.front() : options.output_blob;
  if (std::find(outputs.begin(), outputs.end(), output_blob) == outputs.end()) {
    throw Error("--output-blob", "one of the model's outputs (" + join(outputs, ", ") + ")",
                "'" + output_blob + "'");
  }
  const auto& run = model.spec().run;
  const auto rank = static_cast<std::int64_t>(array.shape.size());
  if (rank != run.spatial_dims + 2 || array.shape[1] != run.input_channels) {
    const std::string spatial = run.spatial_dims == 3 ? ",D,H,W" : ",H,W";
    throw Error("input '" + options.input.string() + "' shape",
                "[N," + std::to_string(run.input_channels) + spatial + "]",
                engine::to_string(array.shape));
  }
  const engine::Context ctx(options.threads);
  model.net().prepare(ctx, {{input, array.shape}});
  engine::Tensor tensor(array.shape, std::move(array.data));
  const auto results = model.net().forward({{input, std::move(tensor)}});
  const auto& result = results.at(output_blob);
  io::write_npy(options.output, result.dims(), result.values());
  core::log_debug("wrote '" + output_blob + "' " + engine::to_string(result.dims()) + " to '" +
                  options.output.string() + "'");
}

}  // namespace cajal::pipeline
