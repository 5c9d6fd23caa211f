// safetensors files: named f32 tensors (https://github.com/huggingface/safetensors):
// u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, the data.
// Read as hostile input: every length and offset is checked before it is used.
#pragma once

#include <filesystem>
#include <string>

#include "engine/layer.h"

namespace cajal::models {

// Throws cajal::Error naming the file and the tensor or field that does not fit.
engine::WeightMap read_safetensors(const std::filesystem::path& path);
// Parses a whole file already in memory; `source` names it in messages.
engine::WeightMap parse_safetensors(const std::string& bytes, const std::string& source);
void write_safetensors(const std::filesystem::path& path, const engine::WeightMap& tensors);

}  // namespace cajal::models
