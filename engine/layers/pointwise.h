// Internal to engine/: a convolution whose kernel is one voxel (1x1 or 1x1x1, stride 1, no
// padding, dilation or groups) into at most 16 channels, in training, by hand on PyTorch's layout:
// a U-Net's last layer (16 channels into 2 classes; the bundled CT model's 8 into 12). oneDNN
// computes it in blocks of 16 output channels, most of them zeros, and reorders its input, its
// output and both gradients to its blocked layout and back (bench/train's 3D U-Net at 64^3: 2.0
// ms forward, 3.7 ms backward; the CT model's shape: 6.9 and 13.1 ms).
#pragma once

#include <cstdint>

namespace cajal::engine::detail {

constexpr std::int64_t kPointwiseMaxOutChannels = 16;

// x [batch, in_channels, positions], y [batch, out_channels, positions], w [out, in].
struct Pointwise {
  std::int64_t batch = 0;
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;  // at most kPointwiseMaxOutChannels
  std::int64_t positions = 0;
};

// y[n, o, v] = b[o] + w[o, 0] x[n, 0, v] + w[o, 1] x[n, 1, v] + ... in that order (no bias term
// where b is null).
void pointwise_forward(const Pointwise& p, const float* x, const float* w, const float* b, float* y,
                       int threads);

// dx[n, c, v] = w[0, c] dy[n, 0, v] + w[1, c] dy[n, 1, v] + ... in that order.
void pointwise_backward_data(const Pointwise& p, const float* dy, const float* w, float* dx,
                             int threads);

// Adds the sums over n and v of dy[n, o, v] x[n, c, v] to dw[o, c], and of dy[n, o, v] to db[o]
// unless db is null: each sample's positions in chunks of a fixed size (any thread count gives
// the same bytes), summed in float in 16 lanes, the lanes added in double, then the chunks in
// order.
void pointwise_backward_weights(const Pointwise& p, const float* x, const float* dy, float* dw,
                                float* db, int threads);

}  // namespace cajal::engine::detail
