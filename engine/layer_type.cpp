#include "engine/layer_type.h"

#include <array>

#include "core/error.h"
#include "engine/layer.h"
#include "engine/layers/channel.h"
#include "engine/layers/convolution.h"
#include "engine/layers/eltwise.h"
#include "engine/layers/linear.h"
#include "engine/layers/normalization.h"
#include "engine/layers/pooling.h"
#include "engine/layers/reshape.h"
#include "engine/layers/upsample.h"
#include "engine/reference/reference.h"

namespace cajal::engine {
namespace {

using Factory = std::unique_ptr<Layer> (*)(LayerType, std::string);

struct LayerTypeEntry {
  LayerType type;
  std::string_view name;
  Factory onednn;
  Factory reference;
};

// The one table of layer types, in the enum's order.
constexpr std::array kLayerTypes{
    LayerTypeEntry{LayerType::convolution, "convolution", make_convolution,
                   reference::make_convolution},
    LayerTypeEntry{LayerType::transposed_convolution, "transposed_convolution", make_convolution,
                   reference::make_convolution},
    LayerTypeEntry{LayerType::max_pool, "max_pool", make_pooling, reference::make_pooling},
    LayerTypeEntry{LayerType::avg_pool, "avg_pool", make_pooling, reference::make_pooling},
    LayerTypeEntry{LayerType::global_avg_pool, "global_avg_pool", make_pooling,
                   reference::make_pooling},
    LayerTypeEntry{LayerType::batch_norm, "batch_norm", make_normalization,
                   reference::make_normalization},
    LayerTypeEntry{LayerType::instance_norm, "instance_norm", make_normalization,
                   reference::make_normalization},
    LayerTypeEntry{LayerType::group_norm, "group_norm", make_normalization,
                   reference::make_normalization},
    LayerTypeEntry{LayerType::relu, "relu", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::leaky_relu, "leaky_relu", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::prelu, "prelu", make_prelu, reference::make_prelu},
    LayerTypeEntry{LayerType::elu, "elu", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::sigmoid, "sigmoid", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::tanh, "tanh", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::gelu, "gelu", make_eltwise, reference::make_eltwise},
    LayerTypeEntry{LayerType::softmax, "softmax", make_channel, reference::make_channel},
    LayerTypeEntry{LayerType::argmax, "argmax", make_channel, reference::make_channel},
    LayerTypeEntry{LayerType::concat, "concat", make_channel, reference::make_channel},
    LayerTypeEntry{LayerType::add, "add", make_channel, reference::make_channel},
    LayerTypeEntry{LayerType::linear, "linear", make_linear, reference::make_linear},
    // flatten and dropout only copy: the copy is its own twin.
    LayerTypeEntry{LayerType::flatten, "flatten", make_reshape, make_reshape},
    LayerTypeEntry{LayerType::dropout, "dropout", make_reshape, make_reshape},
    LayerTypeEntry{LayerType::upsample, "upsample", make_upsample, reference::make_upsample},
};
static_assert(kLayerTypes.size() == kLayerTypeCount, "one table entry per LayerType");

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kLayerTypes.size(); ++i) {
    if (static_cast<std::size_t>(kLayerTypes[i].type) != i) {
      return false;
    }
  }
  return true;
}
static_assert(in_enum_order(), "the table lists the layer types in the enum's order");

const LayerTypeEntry& entry(LayerType type) {
  const auto index = static_cast<std::size_t>(type);
  CAJAL_CHECK(index < kLayerTypes.size()) << "layer type " << index;
  return kLayerTypes[index];
}

}  // namespace

std::string_view layer_type_name(LayerType type) {
  return entry(type).name;
}

LayerType parse_layer_type(std::string_view name) {
  std::string known;
  for (const auto& e : kLayerTypes) {
    if (e.name == name) {
      return e.type;
    }
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  throw Error("layer type", "one of " + known, "'" + std::string(name) + "'");
}

std::unique_ptr<Layer> create_layer(LayerType type, std::string name, Backend backend) {
  const auto& e = entry(type);
  return (backend == Backend::onednn ? e.onednn : e.reference)(type, std::move(name));
}

}  // namespace cajal::engine
