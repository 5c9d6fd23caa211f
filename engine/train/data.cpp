#include "engine/train/data.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/error.h"
#include "engine/train/random.h"

namespace cajal::engine::train {
namespace {

void shuffle(std::vector<std::int64_t>& values, Generator& generator) {
  for (std::size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(generator.below(i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace

EpochSampler::EpochSampler(std::vector<std::int64_t> indices, SamplerConfig config)
    : indices_(std::move(indices)), config_(config) {
  if (config_.batch_size < 1) {
    throw Error("sampler batch size", ">= 1", std::to_string(config_.batch_size));
  }
  const auto count = static_cast<std::int64_t>(indices_.size());
  if (count < 1 || (config_.drop_last && count < config_.batch_size)) {
    throw Error("sampler samples",
                config_.drop_last
                    ? "at least one batch (" + std::to_string(config_.batch_size) + ")"
                    : std::string("at least 1"),
                std::to_string(count));
  }
}

std::int64_t EpochSampler::batches_per_epoch() const {
  const auto count = static_cast<std::int64_t>(indices_.size());
  return config_.drop_last ? count / config_.batch_size
                           : (count + config_.batch_size - 1) / config_.batch_size;
}

std::vector<std::int64_t> EpochSampler::epoch_order(std::int64_t epoch) const {
  auto order = indices_;
  if (config_.shuffle) {
    Generator generator(mix_seed(config_.seed, static_cast<std::uint64_t>(epoch)));
    shuffle(order, generator);
  }
  return order;
}

void EpochSampler::seek(SamplerPosition position) {
  if (position.epoch < 0 || position.batch < 0 || position.batch >= batches_per_epoch()) {
    throw Error(
        "sampler position",
        "epoch >= 0 and batch in [0, " + std::to_string(batches_per_epoch()) + ")",
        "epoch " + std::to_string(position.epoch) + ", batch " + std::to_string(position.batch));
  }
  position_ = position;
}

std::vector<std::int64_t> EpochSampler::next_batch() {
  if (order_epoch_ != position_.epoch) {
    order_ = epoch_order(position_.epoch);
    order_epoch_ = position_.epoch;
  }
  const auto begin = position_.batch * config_.batch_size;
  const auto end = std::min(begin + config_.batch_size, static_cast<std::int64_t>(order_.size()));
  std::vector<std::int64_t> batch(order_.begin() + begin, order_.begin() + end);
  if (++position_.batch == batches_per_epoch()) {
    position_ = {position_.epoch + 1, 0};
  }
  return batch;
}

TrainValidationSplit split_train_validation(std::int64_t count, double validation_fraction,
                                            std::uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    throw Error("validation fraction", "in [0, 1)", std::to_string(validation_fraction));
  }
  if (count < 0)
    throw Error("sample count", ">= 0", std::to_string(count));
  std::vector<std::int64_t> all(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    all[static_cast<std::size_t>(i)] = i;
  Generator generator(seed);
  shuffle(all, generator);
  const auto validation_count =
      static_cast<std::size_t>(std::llround(static_cast<double>(count) * validation_fraction));
  TrainValidationSplit split;
  split.validation.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(validation_count));
  split.train.assign(all.begin() + static_cast<std::ptrdiff_t>(validation_count), all.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

Tensor stack_batch(std::span<const Tensor* const> samples) {
  if (samples.empty())
    throw Error("batch", "at least one sample", "none");
  const auto& first = samples.front()->dims();
  Dims dims{static_cast<std::int64_t>(samples.size())};
  dims.insert(dims.end(), first.begin(), first.end());
  Tensor batch(dims);
  float* out = batch.data();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i]->dims() != first) {
      throw Error("batch sample " + std::to_string(i), to_string(first),
                  to_string(samples[i]->dims()));
    }
    out = std::copy(samples[i]->data(), samples[i]->data() + samples[i]->size(), out);
  }
  return batch;
}

}  // namespace cajal::engine::train
