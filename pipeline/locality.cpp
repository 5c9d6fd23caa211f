// Which networks may run over any extent, and how far their outputs look (declared in
// pipeline/inference.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"
#include "pipeline/inference.h"

namespace cajal::pipeline {
namespace {

using Axes = std::array<std::int64_t, 3>;  // (D, H, W)

// A spatial key of a layer's params: one integer for every axis or an array of 3.
Axes spatial(const models::LayerSpec& layer, const char* key, const Axes& fallback) {
  if (!layer.params.contains(key)) {
    return fallback;
  }
  const auto& value = layer.params.at(key);
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    return {v, v, v};
  }
  if (value.is_array() && value.size() == 3) {
    return {value[0].get<std::int64_t>(), value[1].get<std::int64_t>(),
            value[2].get<std::int64_t>()};
  }
  throw Error("layer '" + layer.name + "' param '" + key + "'", "an integer or 3 integers",
              value.dump());
}

// What a voxel of a blob sees: `jump` input voxels between neighbouring feature voxels, and
// inputs up to `radius` input voxels away on either side (an upper bound: the reaches of the
// layers on the way add up).
struct Reach {
  std::array<double, 3> jump{1, 1, 1};
  std::array<double, 3> radius{0, 0, 0};
};

const char* non_local_reason(engine::LayerType type) {
  switch (type) {
    case engine::LayerType::instance_norm:
      return "instance norm computes its statistics over the extent it sees";
    case engine::LayerType::group_norm:
      return "group norm computes its statistics over the extent it sees";
    case engine::LayerType::global_avg_pool:
      return "global pooling averages over the extent it sees";
    case engine::LayerType::linear:
    case engine::LayerType::flatten:
      return "a fully connected layer needs a fixed input size";
    default:
      return nullptr;
  }
}

}  // namespace

NetworkLocality analyse_locality(const models::ModelSpec& spec) {
  NetworkLocality result;
  result.local = true;
  std::map<std::string, Reach> reaches;
  for (const auto& input : spec.inputs) {
    reaches[input] = Reach{};
  }
  Axes stride_lcm{1, 1, 1};
  for (const auto& layer : spec.layers) {
    if (const char* reason = non_local_reason(layer.type)) {
      result.local = false;
      result.reason = "layer '" + layer.name + "': " + reason;
      return result;
    }
    Reach out;
    bool first = true;
    for (const auto& input : layer.inputs) {
      const auto found = reaches.find(input);
      CAJAL_CHECK(found != reaches.end()) << "blob '" << input << "' read before it is written";
      for (std::size_t a = 0; a < 3; ++a) {
        out.radius[a] =
            first ? found->second.radius[a] : std::max(out.radius[a], found->second.radius[a]);
        out.jump[a] = first ? found->second.jump[a] : std::max(out.jump[a], found->second.jump[a]);
      }
      first = false;
    }
    const Reach in = out;
    using engine::LayerType;
    // An output voxel o reads inputs o * stride - padding + t * dilation, t in [0, kernel): at
    // most max(padding, (kernel - 1) * dilation - padding) input voxels away on either side.
    if (layer.type == LayerType::convolution || layer.type == LayerType::max_pool ||
        layer.type == LayerType::avg_pool) {
      const bool conv = layer.type == LayerType::convolution;
      const Axes kernel = spatial(layer, "kernel_size", {1, 1, 1});
      const Axes stride = spatial(layer, "stride", conv ? Axes{1, 1, 1} : kernel);
      const Axes padding = spatial(layer, "padding", {0, 0, 0});
      const Axes dilation = conv ? spatial(layer, "dilation", {1, 1, 1}) : Axes{1, 1, 1};
      for (std::size_t a = 0; a < 3; ++a) {
        const auto reach = std::max(padding[a], (kernel[a] - 1) * dilation[a] - padding[a]);
        out.radius[a] += static_cast<double>(reach) * in.jump[a];
        out.jump[a] = in.jump[a] * static_cast<double>(stride[a]);
      }
    } else if (layer.type == LayerType::transposed_convolution) {
      // Output o reads inputs i with i * stride = o + padding - t * dilation: at most
      // max(padding, |(kernel - 1) * dilation - padding|) / stride input voxels away.
      const Axes kernel = spatial(layer, "kernel_size", {1, 1, 1});
      const Axes stride = spatial(layer, "stride", {1, 1, 1});
      const Axes padding = spatial(layer, "padding", {0, 0, 0});
      const Axes dilation = spatial(layer, "dilation", {1, 1, 1});
      for (std::size_t a = 0; a < 3; ++a) {
        const auto reach =
            std::max(padding[a], std::abs((kernel[a] - 1) * dilation[a] - padding[a]));
        out.radius[a] += static_cast<double>(reach) * in.jump[a] / static_cast<double>(stride[a]);
        out.jump[a] = in.jump[a] / static_cast<double>(stride[a]);
      }
    } else if (layer.type == LayerType::upsample) {
      // Nearest reads within one input voxel, linear within two.
      const Axes factor = spatial(layer, "scale_factor", {1, 1, 1});
      const bool linear = layer.params.value("mode", std::string("nearest")) == "linear";
      for (std::size_t a = 0; a < 3; ++a) {
        out.radius[a] += (linear ? 2.0 : 1.0) * in.jump[a];
        out.jump[a] = in.jump[a] / static_cast<double>(factor[a]);
      }
    }
    for (std::size_t a = 0; a < 3; ++a) {
      const auto jump = static_cast<std::int64_t>(std::llround(out.jump[a]));
      if (out.jump[a] >= 1 && std::abs(out.jump[a] - static_cast<double>(jump)) < 1e-9) {
        stride_lcm[a] = std::lcm(stride_lcm[a], jump);
      }
    }
    reaches[layer.output] = out;
  }
  result.total_stride = stride_lcm;
  for (const auto& output : spec.outputs) {
    for (std::size_t a = 0; a < 3; ++a) {
      result.receptive_radius[a] =
          std::max(result.receptive_radius[a],
                   static_cast<std::int64_t>(std::ceil(reaches.at(output).radius[a] - 1e-9)));
    }
  }
  return result;
}

nlohmann::json to_json(const NetworkLocality& locality) {
  nlohmann::json j = {{"local", locality.local},
                      {"total_stride", locality.total_stride},
                      {"receptive_radius", locality.receptive_radius}};
  if (!locality.local) {
    j["reason"] = locality.reason;
  }
  return j;
}

}  // namespace cajal::pipeline
