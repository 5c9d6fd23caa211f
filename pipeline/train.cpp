#include "pipeline/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "engine/context.h"
#include "engine/net.h"
#include "engine/train/data.h"
#include "engine/train/random.h"
#include "io/plot.h"
#include "models/builders.h"
#include "models/model.h"
#include "models/safetensors.h"
#include "pipeline/train_config.h"
#include "pipeline/train_data.h"
#include "pipeline/train_metrics.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;
namespace train = engine::train;
using engine::Tensor;
using nlohmann::json;

// Writes `text` under a temporary name next to `path` and renames it into place.
void write_text_file(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream file(temp, std::ios::binary);
    file << text;
    if (!file.flush()) {
      throw Error("'" + temp.string() + "'", "a writable file", "a write error");
    }
  }
  fs::rename(temp, path);
}

void write_weights_file(const fs::path& path, const engine::WeightMap& weights) {
  const fs::path temp = path.string() + ".tmp";
  models::write_safetensors(temp, weights);
  fs::rename(temp, path);
}

// model.json for the configured architecture and run configuration.
json make_model_doc(const TrainConfig& config) {
  json graph;
  if (config.architecture.contains("spec")) {
    graph = models::read_json_file(config.architecture.at("spec").get<std::string>());
  } else {
    graph = models::build_architecture(config.architecture, config.source.string());
  }
  json doc = {{"format", "cajal-model"},      {"format_version", models::kFormatVersion},
              {"inputs", graph.at("inputs")}, {"outputs", graph.at("outputs")},
              {"layers", graph.at("layers")}, {"run", config.run}};
  models::parse_model_spec(doc, config.source.string() + ": model");  // checks it
  return doc;
}

bool has_kernel_weights(engine::LayerType type) {
  return type == engine::LayerType::convolution ||
         type == engine::LayerType::transposed_convolution || type == engine::LayerType::linear;
}

// Fresh weights as the config's init says: kernels and biases of convolutions and linear layers
// from the seeded generator, norms' scales 1 and shifts 0, running variance 1, PReLU 0.25.
engine::WeightMap initial_weights(const std::vector<engine::Node>& nodes,
                                  const TrainConfig& config) {
  train::Generator generator(train::mix_seed(config.seed, 0x696e6974));  // "init"
  engine::WeightMap weights;
  for (const auto& node : nodes) {
    const engine::Layer& layer = *node.layer;
    const auto specs = layer.weight_specs();
    engine::Dims kernel_dims;
    for (const auto& spec : specs) {
      if (spec.role == "weight") {
        kernel_dims = spec.dims;
      }
    }
    for (const auto& spec : specs) {
      Tensor tensor(spec.dims);
      if (has_kernel_weights(layer.type()) && spec.role == "weight") {
        train::initialize_weights(tensor, config.init, generator);
      } else if (has_kernel_weights(layer.type()) && spec.role == "bias") {
        train::initialize_bias(tensor, kernel_dims, config.init, generator);
      } else if (spec.role == "running_var" || spec.role == "weight") {
        std::fill(tensor.values().begin(), tensor.values().end(),
                  layer.type() == engine::LayerType::prelu ? 0.25f : 1.0f);
      }
      weights[layer.name() + "." + spec.role] = std::move(tensor);
    }
  }
  return weights;
}

// Takes from `dir`'s weights every tensor whose name and shape match (transfer learning).
void load_transfer_weights(const fs::path& dir, engine::WeightMap& weights) {
  const auto source = models::read_safetensors(dir / "weights.safetensors");
  std::int64_t taken = 0;
  for (auto& [name, tensor] : weights) {
    const auto found = source.find(name);
    if (found != source.end() && found->second.dims() == tensor.dims()) {
      tensor = found->second;
      ++taken;
    }
  }
  if (taken == 0) {
    throw Error("transfer weights '" + (dir / "weights.safetensors").string() + "'",
                "tensors whose names and shapes match the network's", "none");
  }
  core::log(core::LogLevel::info, "transfer: took " + std::to_string(taken) + " of " +
                                      std::to_string(weights.size()) + " tensors from " +
                                      dir.string());
}

engine::Net make_net(const json& model_doc, engine::NetOptions options) {
  const auto spec = models::parse_model_spec(model_doc, "model.json");
  return engine::Net(spec.inputs, models::make_nodes(spec), spec.outputs, options);
}

// A batch of samples `indices` (augmented from `seed` when configured).
std::pair<Tensor, Tensor> assemble(const SampleSet& samples,
                                   const std::vector<std::int64_t>& indices,
                                   const TrainConfig& config, bool augment, std::uint64_t seed) {
  std::vector<Sample> batch;
  for (std::size_t j = 0; j < indices.size(); ++j) {
    batch.push_back(samples.draw(indices[j], train::mix_seed(seed, 1000003ULL + j)));
    if (augment) {
      Tensor* label = config.task == "segmentation" ? &batch.back().target : nullptr;
      train::augment(batch.back().image, label, config.augment,
                     train::mix_seed(seed, static_cast<std::uint64_t>(j)));
    }
  }
  std::vector<const Tensor*> images;
  std::vector<const Tensor*> targets;
  for (const auto& sample : batch) {
    images.push_back(&sample.image);
    targets.push_back(&sample.target);
  }
  return {train::stack_batch(images), train::stack_batch(targets)};
}

struct Checkpoint {
  std::int64_t epochs_done = 0;
  std::int64_t step = 0;
  train::SamplerPosition position;
  std::vector<EpochRecord> history;
  std::int64_t best_epoch = 0;
  double best_metric = -1.0;
};

json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"train_loss", r.train_loss},
          {"validation_metric", r.validation_metric},
          {"learning_rate", r.learning_rate},
          {"seconds", r.seconds}};
}

void write_checkpoint(const fs::path& output, const Checkpoint& c, const engine::Net& net,
                      const train::Optimizer& optimizer) {
  const fs::path dir = output / "checkpoint";
  const fs::path temp = output / "checkpoint.tmp";
  fs::remove_all(temp);
  fs::create_directories(temp);
  models::write_safetensors(temp / "weights.safetensors", net.weights());
  models::write_safetensors(temp / "optimizer.safetensors", optimizer.state());
  json history = json::array();
  for (const auto& r : c.history) {
    history.push_back(to_json(r));
  }
  const json state = {{"epochs_done", c.epochs_done},
                      {"step", c.step},
                      {"sampler_epoch", c.position.epoch},
                      {"sampler_batch", c.position.batch},
                      {"best_epoch", c.best_epoch},
                      {"best_metric", c.best_metric},
                      {"history", history}};
  write_text_file(temp / "state.json", state.dump(2) + "\n");
  const fs::path old = output / "checkpoint.old";
  fs::remove_all(old);
  if (fs::exists(dir)) {
    fs::rename(dir, old);
  }
  fs::rename(temp, dir);
  fs::remove_all(old);
}

Checkpoint read_checkpoint(const fs::path& output) {
  const fs::path path = output / "checkpoint" / "state.json";
  const json state = models::read_json_file(path);
  Checkpoint c;
  try {
    c.epochs_done = state.at("epochs_done").get<std::int64_t>();
    c.step = state.at("step").get<std::int64_t>();
    c.position = {state.at("sampler_epoch").get<std::int64_t>(),
                  state.at("sampler_batch").get<std::int64_t>()};
    c.best_epoch = state.at("best_epoch").get<std::int64_t>();
    c.best_metric = state.at("best_metric").get<double>();
    for (const auto& r : state.at("history")) {
      c.history.push_back({r.at("epoch").get<std::int64_t>(), r.at("train_loss").get<double>(),
                           r.at("validation_metric").get<double>(),
                           r.at("learning_rate").get<double>(), r.at("seconds").get<double>()});
    }
  } catch (const json::exception& e) {
    throw Error("checkpoint '" + path.string() + "'", "the state cajal train writes", e.what());
  }
  return c;
}

void write_log_and_curves(const fs::path& output, const std::vector<EpochRecord>& history,
                          const std::string& metric) {
  std::ostringstream csv;
  csv << "epoch,train_loss,validation_" << metric << ",learning_rate,seconds\n";
  io::PlotSeries loss{"train loss", {}, {}};
  io::PlotSeries quality{"validation " + metric, {}, {}};
  for (const auto& r : history) {
    csv << r.epoch << ',' << r.train_loss << ',' << r.validation_metric << ',' << r.learning_rate
        << ',' << r.seconds << '\n';
    loss.x.push_back(static_cast<double>(r.epoch));
    loss.y.push_back(r.train_loss);
    quality.x.push_back(static_cast<double>(r.epoch));
    quality.y.push_back(r.validation_metric);
  }
  write_text_file(output / "training_log.csv", csv.str());
  io::write_line_plot({{"loss", "epoch", {loss}}, {metric, "epoch", {quality}}},
                      output / "training_curves.png");
}

void write_model(const fs::path& output, const json& model_doc, const engine::WeightMap& weights,
                 const TrainConfig& config, const json& metrics, std::int64_t best_epoch) {
  write_text_file(output / "model.json", model_doc.dump(1) + "\n");
  write_weights_file(output / "weights.safetensors", weights);
  json card = config.card;
  card["metrics"] = metrics;
  card["provenance"] = {{"trained_by", std::string("cajal train ") + version()},
                        {"config", config.source.filename().string()},
                        {"seed", config.seed},
                        {"epochs", config.epochs},
                        {"best_epoch", best_epoch}};
  models::parse_model_card(card, config.source.string() + ": card");
  write_text_file(output / "card.json", card.dump(2) + "\n");
}

}  // namespace

TrainResult train_model(const TrainOptions& options) {
  const TrainConfig config = read_train_config(options.config);
  const json model_doc = make_model_doc(config);
  const bool segmentation = config.task == "segmentation";
  const std::string metric_name = segmentation ? "dice" : "accuracy";
  const models::RunConfig run =
      models::parse_model_spec(model_doc, config.source.string() + ": run").run;
  const auto samples = open_samples(config.data, run, false);
  const auto test_samples = open_samples(config.data, run, true);
  const auto split =
      train::split_train_validation(samples->size(), config.validation_fraction, config.seed);
  engine::Context ctx(options.threads > 0 ? options.threads : config.threads);

  engine::Net net = make_net(model_doc, engine::NetOptions::for_training());
  Checkpoint state;
  engine::WeightMap weights;
  if (options.resume) {
    state = read_checkpoint(config.output);
    weights = models::read_safetensors(config.output / "checkpoint" / "weights.safetensors");
  } else {
    weights = initial_weights(net.nodes(), config);
    if (!config.initial_weights.empty()) {
      load_transfer_weights(config.initial_weights, weights);
    }
  }
  net.load_weights(weights);
  for (const auto& prefix : config.freeze) {
    net.freeze(prefix);
  }
  fs::create_directories(config.output);
  net.set_training(true);
  engine::Dims input_dims = samples->image_dims();
  input_dims.insert(input_dims.begin(), config.batch_size);
  const std::string input = net.inputs().at(0);
  const std::string output = net.outputs().at(0);
  net.prepare(ctx, {{input, input_dims}});

  train::Optimizer optimizer(config.optimizer, net.parameters());
  if (options.resume) {
    optimizer.load_state(
        models::read_safetensors(config.output / "checkpoint" / "optimizer.safetensors"));
  }
  train::EpochSampler sampler(
      split.train,
      {.batch_size = config.batch_size, .shuffle = true, .drop_last = true, .seed = config.seed});
  sampler.seek(state.position);
  const std::int64_t batches = sampler.batches_per_epoch();
  train::ScheduleConfig schedule = config.schedule;
  const std::int64_t schedule_length =
      config.schedule_per_epoch ? config.epochs : config.epochs * batches;
  if (!config.schedule_total_steps_given) {
    schedule.total_steps = std::max<std::int64_t>(1, schedule_length - schedule.warmup_steps);
  }
  train::validate(schedule);

  const std::int64_t last_epoch =
      options.max_epochs > 0 ? std::min(options.max_epochs, config.epochs) : config.epochs;
  for (std::int64_t epoch = state.epochs_done; epoch < last_epoch; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    double rate = 0.0;
    for (std::int64_t b = 0; b < batches; ++b) {
      rate = train::learning_rate_at(schedule, config.schedule_per_epoch ? epoch : state.step);
      optimizer.set_learning_rate(rate);
      const auto indices = sampler.next_batch();
      auto [images, targets] =
          assemble(*samples, indices, config, config.augment_enabled,
                   train::mix_seed(config.seed, static_cast<std::uint64_t>(state.step)));
      net.zero_grad();
      const auto outputs = net.forward({{input, std::move(images)}});
      auto loss = train::compute_loss(config.loss, outputs.at(output), targets);
      if (!std::isfinite(loss.value)) {
        throw Error("training loss at epoch " + std::to_string(epoch + 1) + ", batch " +
                        std::to_string(b + 1),
                    "a finite number",
                    std::to_string(loss.value) + " (lower the learning rate or clip gradients)");
      }
      net.backward({{output, std::move(loss.diff_logits)}});
      if (config.clip_grad_norm > 0) {
        train::clip_grad_norm(optimizer.parameters(), config.clip_grad_norm);
      }
      optimizer.step();  // the next forward() refreshes the layers' copies of the weights
      ++state.step;
      loss_sum += loss.value;
      if (options.on_progress) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        options.on_progress({epoch + 1, last_epoch, b + 1, batches, loss_sum / double(b + 1),
                             elapsed / double(b + 1) * double(batches - b - 1)});
      }
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.train_loss = loss_sum / static_cast<double>(batches);
    record.learning_rate = rate;
    const engine::WeightMap current = net.weights();
    record.validation_metric =
        evaluate_samples(make_net(model_doc, {}), current, *samples, split.validation,
                         config.batch_size, ctx, segmentation);
    record.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.history.push_back(record);
    state.epochs_done = epoch + 1;
    state.position = sampler.position();
    if (record.validation_metric >= state.best_metric) {  // ties: the later, better-trained epoch
      state.best_metric = record.validation_metric;
      state.best_epoch = record.epoch;
      write_model(config.output, model_doc, current, config,
                  {{"validation_" + metric_name, record.validation_metric}}, record.epoch);
    }
    write_checkpoint(config.output, state, net, optimizer);
    write_log_and_curves(config.output, state.history, metric_name);
    core::log(core::LogLevel::info,
              "epoch " + std::to_string(record.epoch) + "/" + std::to_string(config.epochs) +
                  ": train loss " + std::to_string(record.train_loss) + ", validation " +
                  metric_name + " " + std::to_string(record.validation_metric));
  }

  TrainResult result;
  result.history = state.history;
  result.best_epoch = state.best_epoch;
  result.best_validation_metric = state.best_metric;
  result.metric_name = metric_name;
  result.output = config.output;
  if (test_samples && state.best_epoch > 0) {
    const auto best = models::read_safetensors(config.output / "weights.safetensors");
    std::vector<std::int64_t> all(static_cast<std::size_t>(test_samples->size()));
    for (std::size_t i = 0; i < all.size(); ++i) {
      all[i] = static_cast<std::int64_t>(i);
    }
    result.test_metric = evaluate_samples(make_net(model_doc, {}), best, *test_samples, all,
                                          config.batch_size, ctx, segmentation);
    write_model(config.output, model_doc, best, config,
                {{"validation_" + metric_name, state.best_metric},
                 {"test_" + metric_name, result.test_metric}},
                state.best_epoch);
  }
  return result;
}

}  // namespace cajal::pipeline
