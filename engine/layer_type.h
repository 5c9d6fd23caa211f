// The closed table of layer types: one enum, one table of names and factories (layer_type.cpp).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace cajal::engine {

class Layer;

enum class LayerType {
  convolution,
  transposed_convolution,
  max_pool,
  avg_pool,
  global_avg_pool,
  batch_norm,
  instance_norm,
  group_norm,
  relu,
  leaky_relu,
  prelu,
  elu,
  sigmoid,
  tanh,
  gelu,
  softmax,
  argmax,
  concat,
  add,
  linear,
  flatten,
  dropout,
  upsample,
};
inline constexpr std::size_t kLayerTypeCount = static_cast<std::size_t>(LayerType::upsample) + 1;

// Which implementation runs a layer: oneDNN, or the plain-loop twin that tests compare it with.
enum class Backend { onednn, reference };

std::string_view layer_type_name(LayerType type);
// Throws cajal::Error naming the known types if `name` is not one of them.
LayerType parse_layer_type(std::string_view name);
std::unique_ptr<Layer> create_layer(LayerType type, std::string name,
                                    Backend backend = Backend::onednn);

}  // namespace cajal::engine
