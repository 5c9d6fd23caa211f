#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "core/log.h"
#include "pipeline/train.h"

namespace cajal::apps {
namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  return text;
}

// One line on stderr, rewritten in place on a terminal; nothing when stderr is a file (the
// per-epoch log lines say enough there) or with --quiet.
void print_progress(const pipeline::TrainProgress& p) {
  if (core::log_level() > core::LogLevel::info || isatty(STDERR_FILENO) == 0) {
    return;
  }
  constexpr int kWidth = 30;
  const auto filled = static_cast<int>(kWidth * p.batch / p.batches);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\repoch %lld/%lld [%s] batch %lld/%lld loss %.4f ETA %s   ",
               static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), bar.c_str(),
               static_cast<long long>(p.batch), static_cast<long long>(p.batches), p.mean_loss,
               format_duration(p.eta_seconds).c_str());
  if (p.batch == p.batches) {
    std::fputc('\n', stderr);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<pipeline::TrainOptions>();
  CLI::App* command = app.add_subcommand(
      "train", "Train a network from a JSON config (docs/training.md) into a model folder");
  command->add_option("config", options->config, "Training config (JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_flag("--resume", options->resume,
                    "Continue from OUTPUT/checkpoint/ where the last run stopped");
  command->add_option("--threads", options->threads, "Threads (default: the config's, or all)")
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--max-epochs", options->max_epochs,
                   "Stop after this many epochs in total (the schedule still spans the "
                   "config's epochs)")
      ->check(CLI::PositiveNumber);
  command->callback([options] {
    options->on_progress = print_progress;
    const auto result = pipeline::train_model(*options);
    std::cout << "model: " << result.output.string() << "\n"
              << "best epoch: " << result.best_epoch << ", validation " << result.metric_name << " "
              << result.best_validation_metric << "\n";
    if (result.test_metric >= 0) {
      std::cout << "test " << result.metric_name << ": " << result.test_metric << "\n";
    }
  });
}

}  // namespace cajal::apps
