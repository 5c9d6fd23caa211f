// The training library end to end on a linear classifier: seeded initialisation, split, sampler,
// batches, cross-entropy, gradient clipping, a warm-up + cosine schedule and Adam. The same seed
// gives the same weights byte for byte, and a run resumed from a checkpoint (weights, optimiser
// state, sampler position, step) ends exactly where the uninterrupted run ends.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/train/data.h"
#include "engine/train/init.h"
#include "engine/train/loss.h"
#include "engine/train/optimizer.h"
#include "engine/train/random.h"
#include "engine/train/schedule.h"
#include "tests/train/linear_model.h"

namespace cajal::engine::train {
namespace {

constexpr std::int64_t kClasses = 3;
constexpr std::int64_t kFeatures = 2;

// Three Gaussian blobs in the plane.
struct Blobs {
  std::vector<Tensor> x;  // each [2]
  std::vector<float> y;
};

Blobs make_blobs(std::int64_t count, std::uint64_t seed) {
  const double centres[kClasses][2] = {{-2.0, 0.0}, {2.0, 0.0}, {0.0, 2.5}};
  Generator g(seed);
  Blobs b;
  for (std::int64_t i = 0; i < count; ++i) {
    const auto c = static_cast<std::size_t>(i % kClasses);
    b.x.emplace_back(Dims{kFeatures},
                     std::vector<float>{static_cast<float>(g.normal(centres[c][0], 0.7)),
                                        static_cast<float>(g.normal(centres[c][1], 0.7))});
    b.y.push_back(static_cast<float>(c));
  }
  return b;
}

struct Checkpoint {
  Tensor weights, bias;
  OptimizerState optimizer;
  SamplerPosition position;
  std::int64_t step = 0;
};

class Trainer {
 public:
  // `seed` drives the split and the sampler; `init_seed` the initial weights.
  Trainer(const Blobs& data, std::uint64_t seed, std::uint64_t init_seed)
      : data_(data),
        model_(kClasses, kFeatures),
        optimizer_({.type = OptimizerType::adam, .weight_decay = 1e-4}, model_.parameters()),
        sampler_(split_train_validation(static_cast<std::int64_t>(data.x.size()), 0.2, seed).train,
                 {.batch_size = 8, .seed = seed}) {
    Generator g(init_seed);
    initialize_weights(model_.weights, {.scheme = InitScheme::xavier_uniform}, g);
    initialize_bias(model_.bias, model_.weights.dims(), {.bias = BiasInit::pytorch_default}, g);
  }
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  void train_until(std::int64_t last_step) {
    const ScheduleConfig schedule{.type = ScheduleType::cosine,
                                  .base_learning_rate = 0.05,
                                  .total_steps = 60,
                                  .warmup_steps = 5};
    for (; step_ < last_step; ++step_) {
      const auto batch = sampler_.next_batch();
      std::vector<const Tensor*> samples;
      std::vector<float> labels;
      for (const auto i : batch) {
        samples.push_back(&data_.x[static_cast<std::size_t>(i)]);
        labels.push_back(data_.y[static_cast<std::size_t>(i)]);
      }
      const auto x = stack_batch(samples);
      const auto out = cross_entropy(model_.forward(x), Tensor({x.dim(0)}, std::move(labels)), {});
      model_.backward(x, out.diff_logits);
      clip_grad_norm(optimizer_.parameters(), 5.0);
      optimizer_.set_learning_rate(learning_rate_at(schedule, step_));
      optimizer_.step();
    }
  }

  Checkpoint checkpoint() const {
    return {model_.weights, model_.bias, optimizer_.state(), sampler_.position(), step_};
  }
  void resume(const Checkpoint& c) {
    model_.weights = c.weights;
    model_.bias = c.bias;
    optimizer_.load_state(c.optimizer);
    sampler_.seek(c.position);
    step_ = c.step;
  }

  // Mean cross-entropy and accuracy over all samples.
  std::pair<double, double> evaluate() const {
    std::vector<const Tensor*> samples;
    for (const auto& x : data_.x)
      samples.push_back(&x);
    const auto x = stack_batch(samples);
    const auto logits = model_.forward(x);
    const auto loss = cross_entropy(logits, Tensor({x.dim(0)}, data_.y), {}).value;
    std::int64_t correct = 0;
    for (std::int64_t i = 0; i < x.dim(0); ++i) {
      const float* row = logits.data() + i * kClasses;
      const auto best = std::max_element(row, row + kClasses) - row;
      correct += static_cast<float>(best) == data_.y[static_cast<std::size_t>(i)];
    }
    return {loss, static_cast<double>(correct) / static_cast<double>(x.dim(0))};
  }

  const testing::LinearModel& model() const { return model_; }

 private:
  const Blobs& data_;
  testing::LinearModel model_;
  Optimizer optimizer_;
  EpochSampler sampler_;
  std::int64_t step_ = 0;
};

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dims() == b.dims() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

TEST(TrainingLoop, LearnsSeparableBlobs) {
  const auto data = make_blobs(150, 1);
  Trainer trainer(data, 7, 7);
  const auto [loss_before, accuracy_before] = trainer.evaluate();
  trainer.train_until(60);
  const auto [loss_after, accuracy_after] = trainer.evaluate();
  EXPECT_LT(loss_after, loss_before / 3.0) << loss_before << " -> " << loss_after;
  EXPECT_GT(accuracy_after, 0.93) << accuracy_before << " -> " << accuracy_after;
}

TEST(TrainingLoop, SameSeedSameWeightsAndResumeIsExact) {
  const auto data = make_blobs(150, 1);
  Trainer straight(data, 7, 7);
  straight.train_until(40);
  Trainer again(data, 7, 7);
  again.train_until(40);
  EXPECT_TRUE(same_bytes(again.model().weights, straight.model().weights));
  Trainer other_seed(data, 8, 8);
  other_seed.train_until(40);
  EXPECT_FALSE(same_bytes(other_seed.model().weights, straight.model().weights));

  Trainer interrupted(data, 7, 7);
  interrupted.train_until(23);  // mid-epoch: 120 training samples are 15 batches
  const auto saved = interrupted.checkpoint();
  Trainer resumed(data, 7, 99);  // other initial weights, overwritten by the checkpoint
  resumed.resume(saved);
  resumed.train_until(40);
  EXPECT_TRUE(same_bytes(resumed.model().weights, straight.model().weights));
  EXPECT_TRUE(same_bytes(resumed.model().bias, straight.model().bias));
}

}  // namespace
}  // namespace cajal::engine::train
