// On-the-fly data augmentation for 2D and 3D training samples (issue 4): an image [C, spatial...]
// and its label map [spatial...] (or no label), changed together from a seed. Spatial changes:
// flips per axis and 90-degree rotations (exact index permutations), then one resampling for
// small rotations, scaling and elastic deformation (linear interpolation for the image, nearest
// for the label, so label values are preserved; outside the input: 0). Intensity changes, per
// channel: scale, shift, Gaussian noise. The same seed and config give the same result.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace cajal::engine::train {

struct AugmentConfig {
  double flip_probability = 0.5;       // per spatial axis
  double rotate90_probability = 0.0;   // per plane of equal sizes: 90, 180 or 270 degrees
  double rotate_probability = 0.0;     // per rotation axis (one in 2D, three in 3D)
  double max_rotation_degrees = 15.0;  // angle uniform in [-max, max]
  double scale_probability = 0.0;
  double min_scale = 0.85;  // > 1 zooms in; one factor for all axes
  double max_scale = 1.25;
  double elastic_probability = 0.0;
  double elastic_alpha = 4.0;                // displacement magnitude in voxels after smoothing
  double elastic_sigma = 3.0;                // Gaussian smoothing of the random field, voxels
  double intensity_scale_probability = 0.0;  // per channel
  double min_intensity_scale = 0.75;
  double max_intensity_scale = 1.25;
  double intensity_shift_probability = 0.0;  // per channel, shift uniform in [-max, max]
  double max_intensity_shift = 0.1;
  double noise_probability = 0.0;  // per channel, stddev uniform in [0, max]
  double max_noise_stddev = 0.1;
};

// Throws cajal::Error for a probability outside [0, 1] or an empty or reversed range.
void validate(const AugmentConfig& config);

// The seed for one sample's augmentation in one epoch, a pure function of its arguments: a run
// resumed at any batch augments every sample exactly as the uninterrupted run would.
std::uint64_t augment_seed(std::uint64_t run_seed, std::int64_t epoch, std::int64_t sample);

// `image` [C, D, H, W] or [C, H, W]; `label` (may be null) [D, H, W] or [H, W] of the same size.
// Throws cajal::Error when the dims do not fit.
void augment(Tensor& image, Tensor* label, const AugmentConfig& config, std::uint64_t seed);

// Reverses spatial axis `axis` (0 = first spatial axis) of image and label.
void flip(Tensor& image, Tensor* label, int axis);
// Rotates the plane of spatial axes (a, b), whose sizes must be equal, by `quarter_turns` * 90
// degrees: (i_a, i_b) takes the value from (i_b, n - 1 - i_a) for each quarter turn.
void rotate90(Tensor& image, Tensor* label, int axis_a, int axis_b, int quarter_turns);

}  // namespace cajal::engine::train
