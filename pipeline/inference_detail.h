// Pieces shared by the inference modes (pipeline/inference.cpp and inference_window.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "models/model.h"
#include "pipeline/inference.h"

namespace cajal::pipeline::detail {

using Extent = std::array<std::int64_t, 3>;  // (D, H, W)

// A float image laid out [D][H][W] (a Volume's pixels: D = k, W = i).
struct Block {
  Extent size{0, 0, 0};
  std::vector<float> values;
  std::int64_t voxels() const { return size[0] * size[1] * size[2]; }
};

// `src` padded to `size` with `value`, `lower` voxels before its start along each axis.
Block pad_block(const Block& src, const Extent& size, const Extent& lower, float value);
// The box [begin, begin + box) of `src` into dst ([box] floats), reversed along axes in `flip`.
void read_box(const Block& src, const Extent& begin, const Extent& box, std::array<bool, 3> flip,
              float* dst);
// Reverses a [C][D][H][W] block in place along the axes in `flip`.
void flip_channels(float* data, std::int64_t channels, const Extent& size,
                   std::array<bool, 3> flip);
// Turns a [C][D][H][W] block of network outputs into probabilities in place: softmax over
// channels (sigmoid for one channel), unless the network ends in that function already.
void to_probabilities(float* data, std::int64_t channels, std::int64_t voxels, bool already);
// The flips test-time augmentation runs: every subset of the `allowed` axes (D, H, W), or none.
std::vector<std::array<bool, 3>> flip_set(bool tta, std::array<bool, 3> allowed);
// The index of the largest of `classes` values at stride `stride` (the first on ties); for one
// channel (a sigmoid probability), 1 when it is above 0.5.
std::uint8_t argmax(const float* values, std::int64_t classes, std::int64_t stride);
// labels[w] = argmax(scores + w, classes, stride) for w < count (2 or more classes), a stretch of
// voxels at a time, class by class: vector code where argmax per voxel reads a value from each of
// `classes` planes in turn.
void argmax_row(const float* scores, std::int64_t classes, std::int64_t stride, std::int64_t count,
                std::uint8_t* labels);

// Bytes one forward pass of `model` needs for [batch, 1, size]: the input and the net's planned
// peak (live activations, the output, layout copies). Prepares the net for those dims.
std::int64_t prepare_and_measure(models::Model& model, const engine::Context& ctx,
                                 std::int64_t batch, const Extent& size);

// The model being run and how its outputs are read.
struct Session {
  models::Model& model;
  const engine::Context& ctx;
  std::int64_t channels = 0;           // network output channels
  bool ends_in_probabilities = false;  // the last layer is softmax (or sigmoid)
  std::vector<std::array<bool, 3>> flips;
};

// Window mode (inference_window.cpp): labels of `image`'s voxels into `labels`; returns the
// windows run (TTA flips counted). `held`: bytes already held by the caller. `image` is freed
// once padded.
std::int64_t run_windows(Session& session, Block image, float pad_value,
                         const InferenceOptions& options, std::int64_t held,
                         InferenceReport& report, std::vector<std::uint8_t>& labels);

}  // namespace cajal::pipeline::detail
