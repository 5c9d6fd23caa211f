// Architecture builders: a few hyperparameters to the explicit graph of a model.json (inputs,
// outputs, layers), so that `cajal train` can start a network from its config and the graph it
// trains is the graph that inference runs. See docs/model-format.md, "Builders".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cajal::models {

// A U-Net (Ronneberger 2015; nnU-Net's plain variant): per stage two (convolution, norm,
// activation) blocks; down by max pool or a stride-2 first convolution; up by a stride-2
// transposed convolution, concatenated with the skip; a 1x1 head with one channel per label.
struct UNetConfig {
  std::int64_t spatial_dims = 3;  // 2 or 3
  std::int64_t in_channels = 1;
  std::int64_t out_channels = 2;
  std::vector<std::int64_t> features = {16, 32, 64, 128};  // per stage, at least 2 stages
  std::string norm = "batch";                              // batch | instance | none
  std::string activation = "relu";                         // relu | leaky_relu
  double negative_slope = 0.01;                            // leaky_relu only
  std::string down = "max_pool";                           // max_pool | strided_convolution
};

// LeNet-5 as in LeCun et al. 1998, table of its layers: C1 6@5x5, S2 2x2 average pool, C3
// 16@5x5, S4, C5 120@5x5, F6 84, output; tanh after every convolution and F6. Input 1x32x32.
struct LeNet5Config {
  std::int64_t in_channels = 1;
  std::int64_t classes = 10;
};

// A ResNet of basic blocks (He et al. 2016): stem, stages of two-convolution residual blocks
// with batch norm and ReLU (a 1x1 projection where the shape changes), global average pool,
// linear. `small_stem`: a 3x3 stride-1 stem for small images (CIFAR-style) instead of 7x7/2 and a
// max pool.
struct ResNetConfig {
  std::int64_t spatial_dims = 2;
  std::int64_t in_channels = 3;
  std::int64_t classes = 10;
  std::vector<std::int64_t> blocks = {2, 2, 2, 2};  // ResNet-18
  std::vector<std::int64_t> widths = {64, 128, 256, 512};
  bool small_stem = false;
};

// {"inputs": [...], "outputs": [...], "layers": [...]}: the graph part of a model.json.
nlohmann::json build_unet(const UNetConfig& config);
nlohmann::json build_lenet5(const LeNet5Config& config);
nlohmann::json build_resnet(const ResNetConfig& config);

// {"builder": "unet" | "lenet5" | "resnet", ...the config's keys...}: unknown builders and keys
// are rejected with a cajal::Error naming `source` and the key.
nlohmann::json build_architecture(const nlohmann::json& config, const std::string& source);

}  // namespace cajal::models
