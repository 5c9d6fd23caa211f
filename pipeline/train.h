// `cajal train CONFIG.json`: trains a network on the engine and writes a model folder
// (model.json, weights.safetensors, card.json) that `cajal segment` / `cajal classify` and
// `cajal model run` load. Output folder layout and the config's keys: docs/training.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cajal::pipeline {

struct TrainProgress {
  std::int64_t epoch = 0;  // 1-based
  std::int64_t epochs = 0;
  std::int64_t batch = 0;  // 1-based
  std::int64_t batches = 0;
  double mean_loss = 0.0;    // over the epoch's batches so far
  double eta_seconds = 0.0;  // to the end of the epoch
};

struct TrainOptions {
  std::filesystem::path config;
  // Continue from OUTPUT/checkpoint/ exactly where it stopped: same next batch, same optimiser
  // state, same weights.
  bool resume = false;
  int threads = 0;              // > 0 overrides the config's
  std::int64_t max_epochs = 0;  // > 0: stop after this many epochs in total (short runs, tests)
  std::function<void(const TrainProgress&)> on_progress;  // after every batch
};

struct EpochRecord {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0.0;
  double validation_metric = 0.0;  // accuracy (classification) or mean foreground Dice
  double learning_rate = 0.0;      // at the epoch's last step
  double seconds = 0.0;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  std::int64_t best_epoch = 0;
  double best_validation_metric = 0.0;
  double test_metric = -1.0;  // of the best weights on the test part; -1 without one
  std::string metric_name;    // accuracy | dice
  std::filesystem::path output;
};

TrainResult train_model(const TrainOptions& options);

}  // namespace cajal::pipeline
