// Mini-batches for training (issue 4): a seeded epoch sampler whose position can be saved and
// restored (so the batch after --resume is the one that would have come next), a seeded
// train/validation split, and a batch assembler that stacks samples into [N, C, ...].
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tensor.h"

namespace cajal::engine::train {

struct SamplerConfig {
  std::int64_t batch_size = 1;
  bool shuffle = true;
  bool drop_last = false;  // drop an incomplete last batch of each epoch
  std::uint64_t seed = 0;
};

// Where the sampler is: the next batch to give is batch `batch` of epoch `epoch`.
struct SamplerPosition {
  std::int64_t epoch = 0;
  std::int64_t batch = 0;
  bool operator==(const SamplerPosition&) const = default;
};

class EpochSampler {
 public:
  // `indices`: the sample indices to draw from (e.g. the training part of a split).
  // Throws cajal::Error for batch_size < 1 or no indices (or fewer than one batch with drop_last).
  EpochSampler(std::vector<std::int64_t> indices, SamplerConfig config);

  // The next batch of sample indices; moves to the next epoch after the last batch.
  std::vector<std::int64_t> next_batch();
  std::int64_t batches_per_epoch() const;

  SamplerPosition position() const { return position_; }
  // Continues from a saved position. Throws cajal::Error if the batch is out of range.
  void seek(SamplerPosition position);

  // The order of the indices in `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch), or the
  // given order without shuffling. A pure function of the config and epoch.
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;

 private:
  std::vector<std::int64_t> indices_;
  SamplerConfig config_;
  SamplerPosition position_;
  std::vector<std::int64_t> order_;  // epoch_order(position_.epoch)
  std::int64_t order_epoch_ = -1;
};

struct TrainValidationSplit {
  std::vector<std::int64_t> train;       // ascending
  std::vector<std::int64_t> validation;  // ascending
};
// Shuffles 0..count-1 with `seed` and puts round(count * validation_fraction) of them into the
// validation part. Throws cajal::Error for a fraction outside [0, 1).
TrainValidationSplit split_train_validation(std::int64_t count, double validation_fraction,
                                            std::uint64_t seed);

// Stacks samples of equal dims [C, spatial...] into [N, C, spatial...]. Throws cajal::Error for no
// samples or differing dims.
Tensor stack_batch(std::span<const Tensor* const> samples);

}  // namespace cajal::engine::train
