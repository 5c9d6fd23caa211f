// Training samples for `cajal train`: MNIST-style IDX files (classification) and generated 2D
// images of shapes with their masks (segmentation). A sample is an image [C, spatial...] and a
// target: the class index as [1], or a label map [spatial...].
#pragma once

#include <cstdint>
#include <memory>

#include "engine/tensor.h"
#include "models/model_spec.h"
#include "pipeline/train_config.h"

namespace cajal::pipeline {

struct Sample {
  engine::Tensor image;
  engine::Tensor target;
};

class SampleSet {
 public:
  virtual ~SampleSet() = default;
  virtual std::int64_t size() const = 0;
  virtual Sample get(std::int64_t index) const = 0;
  // A training draw of sample `index` from `seed` (the step): sets whose samples are cut at
  // random from larger images (volumes, phantom) cut a fresh one; the others return get(index).
  virtual Sample draw(std::int64_t index, std::uint64_t seed) const {
    (void)seed;
    return get(index);
  }
  // The dims of every sample's image and target.
  virtual engine::Dims image_dims() const = 0;
  virtual engine::Dims target_dims() const = 0;
  // Labels are 0 .. classes() - 1.
  virtual std::int64_t classes() const = 0;
};

// The training part (test = false) or the test part of the data. Throws cajal::Error for files
// that do not fit together (counts, label values); returns null for a test part not configured.
// `run` is the trained model's run configuration: volumes and phantom cases are preprocessed as
// it says and cut into patches of its patch_size.
std::unique_ptr<SampleSet> open_samples(const TrainDataConfig& config, const models::RunConfig& run,
                                        bool test);

// volumes / phantom (pipeline/train_volumes.cpp).
std::unique_ptr<SampleSet> open_volume_samples(const TrainDataConfig& config,
                                               const models::RunConfig& run, bool test);

// lesions (pipeline/train_lesions.cpp): every lesion of generated phantom cases, cut as
// `cajal classify --roi` cuts it; the target is its class index in run.labels.
std::unique_ptr<SampleSet> open_lesion_samples(const TrainDataConfig& config,
                                               const models::RunConfig& run, bool test);

// One generated shapes2d sample: filled discs, squares and triangles (labels 1, 2, 3, ...) of
// random size, position and brightness on a dark background, blurred (Gaussian, sigma 1 pixel)
// and with Gaussian noise; a pure function of (config, index).
Sample make_shapes_sample(const TrainDataConfig& config, std::uint64_t seed);

}  // namespace cajal::pipeline
