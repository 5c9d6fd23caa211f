#include "models/builders.h"

#include <utility>

#include "core/error.h"
#include "engine/params.h"

namespace cajal::models {
namespace {

using nlohmann::json;

// Appends layers in order and names the blobs after the layers that write them.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::int64_t spatial_dims) : spatial_dims_(spatial_dims) {}

  // One value for every spatial axis, as an array (fixes the layer's spatial rank).
  json per_axis(std::int64_t value) const {
    return json(std::vector<std::int64_t>(static_cast<std::size_t>(spatial_dims_), value));
  }
  std::string add(const std::string& name, const std::string& type, std::vector<std::string> inputs,
                  json params = json::object()) {
    layers_.push_back({{"name", name}, {"type", type}, {"inputs", std::move(inputs)}});
    if (!params.empty()) {
      layers_.back()["params"] = std::move(params);
    }
    return name;
  }
  std::string conv(const std::string& name, const std::string& input, std::int64_t in,
                   std::int64_t out, std::int64_t kernel, std::int64_t stride, bool bias,
                   std::int64_t padding) {
    json params = {{"in_channels", in}, {"out_channels", out}, {"kernel_size", per_axis(kernel)}};
    if (padding != 0) {
      params["padding"] = padding;
    }
    if (stride != 1) {
      params["stride"] = stride;
    }
    if (!bias) {
      params["bias"] = false;
    }
    return add(name, "convolution", {input}, std::move(params));
  }
  json finish(const std::string& input, const std::string& output) const {
    return {{"inputs", {input}}, {"outputs", {output}}, {"layers", layers_}};
  }

 private:
  std::int64_t spatial_dims_;
  json layers_ = json::array();
};

void check_spatial_dims(std::int64_t spatial_dims, const std::string& where) {
  if (spatial_dims != 2 && spatial_dims != 3) {
    throw Error(where + ": spatial_dims", "2 or 3", std::to_string(spatial_dims));
  }
}

// A non-empty array of positive integers under `key`, or `fallback` when absent.
std::vector<std::int64_t> positive_list(const json& config, const std::string& key,
                                        const std::vector<std::int64_t>& fallback,
                                        const std::string& where) {
  if (!config.contains(key)) {
    return fallback;
  }
  const json& value = config.at(key);
  std::vector<std::int64_t> result;
  if (value.is_array() && !value.empty()) {
    for (const auto& item : value) {
      if (!item.is_number_integer() || item.get<std::int64_t>() < 1) {
        result.clear();
        break;
      }
      result.push_back(item.get<std::int64_t>());
    }
  }
  if (result.empty()) {
    throw Error(where + ": key '" + key + "'", "a non-empty array of positive integers",
                value.dump());
  }
  return result;
}

}  // namespace

nlohmann::json build_unet(const UNetConfig& config) {
  check_spatial_dims(config.spatial_dims, "unet builder");
  if (config.features.size() < 2) {
    throw Error("unet builder: features", "at least 2 stages",
                std::to_string(config.features.size()));
  }
  GraphBuilder graph(config.spatial_dims);
  const auto block = [&](const std::string& prefix, int index, std::string x, std::int64_t in,
                         std::int64_t out, std::int64_t stride) {
    const std::string n = std::to_string(index);
    x = graph.conv(prefix + ".conv" + n, x, in, out, 3, stride, true, 1);
    if (config.norm == "batch") {
      x = graph.add(prefix + ".norm" + n, "batch_norm", {x}, {{"num_features", out}});
    } else if (config.norm == "instance") {
      x = graph.add(prefix + ".norm" + n, "instance_norm", {x},
                    {{"num_features", out}, {"affine", true}});
    }
    if (config.activation == "leaky_relu") {
      return graph.add(prefix + ".act" + n, "leaky_relu", {x},
                       {{"negative_slope", config.negative_slope}});
    }
    return graph.add(prefix + ".act" + n, "relu", {x});
  };
  const auto& f = config.features;
  std::vector<std::string> skips;
  std::string x = "image";
  std::int64_t channels = config.in_channels;
  for (std::size_t s = 0; s < f.size(); ++s) {
    const std::string prefix = "enc" + std::to_string(s);
    std::int64_t stride = 1;
    if (s > 0 && config.down == "max_pool") {
      x = graph.add(prefix + ".pool", "max_pool", {x}, {{"kernel_size", graph.per_axis(2)}});
    } else if (s > 0) {
      stride = 2;
    }
    x = block(prefix, 1, x, channels, f[s], stride);
    x = block(prefix, 2, x, f[s], f[s], 1);
    channels = f[s];
    skips.push_back(x);
  }
  for (std::size_t s = f.size() - 1; s-- > 0;) {
    const std::string prefix = "dec" + std::to_string(s);
    const std::string up = graph.add(prefix + ".up", "transposed_convolution", {x},
                                     {{"in_channels", f[s + 1]},
                                      {"out_channels", f[s]},
                                      {"kernel_size", graph.per_axis(2)},
                                      {"stride", 2}});
    x = graph.add(prefix + ".cat", "concat", {up, skips[s]});
    x = block(prefix, 1, x, 2 * f[s], f[s], 1);
    x = block(prefix, 2, x, f[s], f[s], 1);
  }
  graph.conv("head", x, f[0], config.out_channels, 1, 1, true, 0);
  return graph.finish("image", "head");
}

nlohmann::json build_lenet5(const LeNet5Config& config) {
  GraphBuilder graph(2);
  const auto pool = [&](const std::string& name, const std::string& input) {
    return graph.add(name, "avg_pool", {input}, {{"kernel_size", graph.per_axis(2)}});
  };
  // LeNet-5 does not pad: the 5x5 kernels shrink 32 -> 28, 14 -> 10 and 5 -> 1.
  std::string x = graph.conv("c1", "image", config.in_channels, 6, 5, 1, true, 0);
  x = graph.add("c1.act", "tanh", {x});
  x = pool("s2", x);
  x = graph.conv("c3", x, 6, 16, 5, 1, true, 0);
  x = graph.add("c3.act", "tanh", {x});
  x = pool("s4", x);
  x = graph.conv("c5", x, 16, 120, 5, 1, true, 0);
  x = graph.add("c5.act", "tanh", {x});
  x = graph.add("flatten", "flatten", {x});
  x = graph.add("f6", "linear", {x}, {{"in_features", 120}, {"out_features", 84}});
  x = graph.add("f6.act", "tanh", {x});
  graph.add("output", "linear", {x}, {{"in_features", 84}, {"out_features", config.classes}});
  return graph.finish("image", "output");
}

nlohmann::json build_resnet(const ResNetConfig& config) {
  check_spatial_dims(config.spatial_dims, "resnet builder");
  if (config.blocks.size() != config.widths.size() || config.blocks.empty()) {
    throw Error(
        "resnet builder: blocks and widths", "arrays of the same non-zero length",
        std::to_string(config.blocks.size()) + " and " + std::to_string(config.widths.size()));
  }
  GraphBuilder graph(config.spatial_dims);
  const auto bn = [&](const std::string& name, const std::string& input, std::int64_t c) {
    return graph.add(name, "batch_norm", {input}, {{"num_features", c}});
  };
  std::int64_t channels = config.widths[0];
  std::string x =
      graph.conv("stem.conv", "image", config.in_channels, channels, config.small_stem ? 3 : 7,
                 config.small_stem ? 1 : 2, false, config.small_stem ? 1 : 3);
  x = graph.add("stem.act", "relu", {bn("stem.bn", x, channels)});
  if (!config.small_stem) {
    x = graph.add("stem.pool", "max_pool", {x},
                  {{"kernel_size", graph.per_axis(3)}, {"stride", 2}, {"padding", 1}});
  }
  for (std::size_t stage = 0; stage < config.blocks.size(); ++stage) {
    const std::int64_t width = config.widths[stage];
    for (std::int64_t b = 0; b < config.blocks[stage]; ++b) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      const std::int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      std::string y = graph.conv(p + ".conv1", x, channels, width, 3, stride, false, 1);
      y = graph.add(p + ".act1", "relu", {bn(p + ".bn1", y, width)});
      y = bn(p + ".bn2", graph.conv(p + ".conv2", y, width, width, 3, 1, false, 1), width);
      std::string shortcut = x;
      if (stride != 1 || channels != width) {
        shortcut = graph.conv(p + ".downsample.conv", x, channels, width, 1, stride, false, 0);
        shortcut = bn(p + ".downsample.bn", shortcut, width);
      }
      x = graph.add(p + ".act2", "relu", {graph.add(p + ".add", "add", {y, shortcut})});
      channels = width;
    }
  }
  x = graph.add("flatten", "flatten", {graph.add("pool", "global_avg_pool", {x})});
  graph.add("fc", "linear", {x}, {{"in_features", channels}, {"out_features", config.classes}});
  return graph.finish("image", "fc");
}

nlohmann::json build_architecture(const nlohmann::json& config, const std::string& source) {
  const std::string where = source + ": builder";
  if (!config.is_object() || !config.contains("builder") || !config.at("builder").is_string()) {
    throw Error(where, "an object with \"builder\": \"unet\", \"lenet5\" or \"resnet\"",
                config.dump());
  }
  const std::string builder = config.at("builder").get<std::string>();
  json scalars = config;
  scalars.erase("builder");
  for (const char* list_key : {"features", "blocks", "widths"}) {
    scalars.erase(list_key);
  }
  engine::ParamReader keys(scalars, where + " '" + builder + "'");
  json graph;
  if (builder == "unet") {
    UNetConfig c;
    c.spatial_dims = keys.integer("spatial_dims", 3, 2);
    c.in_channels = keys.integer("in_channels", 1, 1);
    c.out_channels = keys.integer("out_channels", 2);
    c.features = positive_list(config, "features", c.features, where);
    c.norm = keys.choice("norm", c.norm, {"batch", "instance", "none"});
    c.activation = keys.choice("activation", c.activation, {"relu", "leaky_relu"});
    c.negative_slope = keys.number("negative_slope", c.negative_slope);
    c.down = keys.choice("down", c.down, {"max_pool", "strided_convolution"});
    keys.finish();
    check_spatial_dims(c.spatial_dims, where);
    graph = build_unet(c);
  } else if (builder == "lenet5") {
    LeNet5Config c;
    c.in_channels = keys.integer("in_channels", 1, 1);
    c.classes = keys.integer("classes", 10, 2);
    keys.finish();
    graph = build_lenet5(c);
  } else if (builder == "resnet") {
    ResNetConfig c;
    c.spatial_dims = keys.integer("spatial_dims", 2, 2);
    c.in_channels = keys.integer("in_channels", 3, 1);
    c.classes = keys.integer("classes", 10, 2);
    c.blocks = positive_list(config, "blocks", c.blocks, where);
    c.widths = positive_list(config, "widths", c.widths, where);
    c.small_stem = keys.boolean("small_stem", false);
    keys.finish();
    check_spatial_dims(c.spatial_dims, where);
    graph = build_resnet(c);
  } else {
    throw Error(where, "\"unet\", \"lenet5\" or \"resnet\"", "\"" + builder + "\"");
  }
  if (builder != "resnet" && (config.contains("blocks") || config.contains("widths"))) {
    throw Error(where + " '" + builder + "': unknown key 'blocks'/'widths'", "no such key",
                "present");
  }
  if (builder != "unet" && config.contains("features")) {
    throw Error(where + " '" + builder + "': unknown key 'features'", "no such key", "present");
  }
  return graph;
}

}  // namespace cajal::models
