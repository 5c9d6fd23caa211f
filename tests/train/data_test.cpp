#include "engine/train/data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace cajal::engine::train {
namespace {

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(EpochSampler, EachEpochIsAPermutationAndEpochsDiffer) {
  EpochSampler sampler(iota(10), {.batch_size = 3, .seed = 5});
  EXPECT_EQ(sampler.batches_per_epoch(), 4);
  std::vector<std::int64_t> seen;
  for (int b = 0; b < 4; ++b) {
    const auto batch = sampler.next_batch();
    EXPECT_EQ(batch.size(), b < 3 ? 3u : 1u);
    seen.insert(seen.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(sampler.position(), (SamplerPosition{1, 0}));
  EXPECT_EQ(seen, sampler.epoch_order(0));
  EXPECT_NE(seen, iota(10));
  EXPECT_NE(sampler.epoch_order(0), sampler.epoch_order(1));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, iota(10));
}

TEST(EpochSampler, SameSeedSameOrderOtherSeedOtherOrder) {
  const EpochSampler a(iota(50), {.batch_size = 4, .seed = 1});
  const EpochSampler b(iota(50), {.batch_size = 4, .seed = 1});
  const EpochSampler c(iota(50), {.batch_size = 4, .seed = 2});
  EXPECT_EQ(a.epoch_order(3), b.epoch_order(3));
  EXPECT_NE(a.epoch_order(3), c.epoch_order(3));
  const EpochSampler plain(iota(5), {.batch_size = 2, .shuffle = false});
  EXPECT_EQ(plain.epoch_order(7), iota(5));
}

// Saving the position and seeking a fresh sampler there gives the batch that came next.
TEST(EpochSampler, ResumeGivesTheSameNextBatches) {
  const SamplerConfig config{.batch_size = 4, .drop_last = true, .seed = 77};
  EpochSampler straight(iota(18), config);
  EXPECT_EQ(straight.batches_per_epoch(), 4);
  std::vector<std::vector<std::int64_t>> expected;
  for (int i = 0; i < 11; ++i)
    expected.push_back(straight.next_batch());
  EpochSampler first(iota(18), config);
  for (int i = 0; i < 6; ++i)
    first.next_batch();
  const auto saved = first.position();
  EXPECT_EQ(saved, (SamplerPosition{1, 2}));
  EpochSampler resumed(iota(18), config);
  resumed.seek(saved);
  for (int i = 6; i < 11; ++i)
    EXPECT_EQ(resumed.next_batch(), expected[i]) << i;
  EXPECT_THROW(resumed.seek({0, 4}), Error);
  EXPECT_THROW(resumed.seek({-1, 0}), Error);
}

TEST(EpochSampler, RejectsConfigsThatDoNotFit) {
  EXPECT_THROW(EpochSampler(iota(5), {.batch_size = 0}), Error);
  EXPECT_THROW(EpochSampler({}, {}), Error);
  EXPECT_THROW(EpochSampler(iota(3), {.batch_size = 4, .drop_last = true}), Error);
}

TEST(Split, IsDisjointCompleteAndSeeded) {
  const auto a = split_train_validation(100, 0.2, 3);
  const auto b = split_train_validation(100, 0.2, 3);
  const auto c = split_train_validation(100, 0.2, 4);
  EXPECT_EQ(a.validation.size(), 20u);
  EXPECT_EQ(a.train.size(), 80u);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_NE(a.validation, c.validation);
  std::vector<std::int64_t> all = a.train;
  all.insert(all.end(), a.validation.begin(), a.validation.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(100));
  EXPECT_THROW(split_train_validation(10, 1.0, 0), Error);
}

TEST(StackBatch, CopiesSamplesInOrder) {
  const Tensor a({1, 2, 2}, std::vector<float>{1, 2, 3, 4});
  const Tensor b({1, 2, 2}, std::vector<float>{5, 6, 7, 8});
  const std::vector<const Tensor*> samples{&b, &a};
  const auto batch = stack_batch(samples);
  EXPECT_EQ(batch.dims(), (Dims{2, 1, 2, 2}));
  EXPECT_EQ(batch.data()[0], 5.0f);
  EXPECT_EQ(batch.data()[7], 4.0f);
  const Tensor c({1, 2, 3});
  const std::vector<const Tensor*> mixed{&a, &c};
  EXPECT_THROW(stack_batch(mixed), Error);
}

}  // namespace
}  // namespace cajal::engine::train
