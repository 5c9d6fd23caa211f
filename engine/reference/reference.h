// The naive twins: plain-loop implementations of every layer's forward and backward, for tests to
// compare the oneDNN layers with (ncnn's naive twin). Slow on purpose: clear loops, double sums.
#pragma once

#include <memory>
#include <string>

#include "engine/layer.h"

namespace cajal::engine::reference {

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name);
std::unique_ptr<Layer> make_pooling(LayerType type, std::string name);
std::unique_ptr<Layer> make_normalization(LayerType type, std::string name);
std::unique_ptr<Layer> make_eltwise(LayerType type, std::string name);
std::unique_ptr<Layer> make_prelu(LayerType type, std::string name);
std::unique_ptr<Layer> make_channel(LayerType type, std::string name);
std::unique_ptr<Layer> make_linear(LayerType type, std::string name);
std::unique_ptr<Layer> make_upsample(LayerType type, std::string name);

// One activation on one value, as PyTorch defines it (alpha: negative_slope or elu's alpha).
double activate(LayerType type, double alpha, double x);

// Spatial dims of a [N, C, (D,) H, W] tensor as three, D = 1 for 2D.
struct Grid {
  std::int64_t d = 1;
  std::int64_t h = 1;
  std::int64_t w = 1;
  std::int64_t size() const { return d * h * w; }
};
Grid grid_of(const Dims& dims);
// Per-axis parameters as three, `fill` in front for 2D.
Grid grid_of_params(const Dims& values, std::int64_t fill);

}  // namespace cajal::engine::reference
