// `cajal model inspect` and `cajal model run`: a model folder described for an input size, and
// run on a raw tensor from a NumPy .npy file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cajal::pipeline {

struct LayerDescription {
  std::string name;
  std::string type;
  std::vector<std::string> inputs;
  std::string output;                      // the blob it writes
  std::vector<std::int64_t> output_shape;  // for the inspected input shape
  std::int64_t parameter_count = 0;
  std::int64_t flops = 0;
};

struct ModelDescription {
  std::string path;
  std::string name;  // from card.json
  std::string version;
  std::string input;  // the input blob
  std::vector<std::int64_t> input_shape;
  std::vector<std::string> outputs;
  std::vector<LayerDescription> layers;  // as model.json lists them, before folding and fusing
  std::int64_t parameter_count = 0;      // every tensor in weights.safetensors
  std::int64_t flops = 0;                // one forward pass as it runs (after fusing)
  // Bytes of the activation buffers the engine plans for this input, plus the input itself.
  std::int64_t peak_activation_bytes = 0;
};

// Loads the model at `dir` and prepares it for `input_shape` (N C [D] H W); an empty shape means
// [1, input_channels, patch_size...] from the model's run configuration, an error without one.
ModelDescription describe_model(const std::filesystem::path& dir,
                                std::vector<std::int64_t> input_shape = {});
nlohmann::json to_json(const ModelDescription& description);
std::string to_text(const ModelDescription& description);

struct ModelRunOptions {
  std::filesystem::path model_dir;
  std::filesystem::path input;   // .npy
  std::filesystem::path output;  // .npy, written under a temporary name then renamed
  std::string output_blob;       // empty: the model's first output
  int threads = 0;               // <= 0: oneDNN's default
};

// Reads the input (float32, or float64/int16/uint8 converted with a warning on stderr), runs the
// model on it and writes the output blob as float32.
void run_model(const ModelRunOptions& options);

// "1,1,96,96,96" -> {1, 1, 96, 96, 96}; throws cajal::Error on anything else.
std::vector<std::int64_t> parse_shape(const std::string& text);

}  // namespace cajal::pipeline
