// Issue 4's training benchmark, cajal's side: one epoch of LeNet-5 on Fashion-MNIST, or N steps
// of a 3D U-Net on 1x1x64^3 patches, or N steps of the bundled CT model's U-Net (models/ct-organs:
// features 8 to 128, 12 classes) on a batch of two 32x96x96 patches, as `cajal train` runs it;
// timed, prints one JSON line. bench/train/run.sh runs it next to PyTorch
// (bench/train/torch_bench.py) on the same thread count.
//
//   train_bench lenet5 --threads 2
//   train_bench unet3d|unet3d_ct --steps 50 --threads 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/context.h"
#include "engine/net.h"
#include "engine/train/data.h"
#include "engine/train/init.h"
#include "engine/train/loss.h"
#include "engine/train/optimizer.h"
#include "engine/train/random.h"
#include "io/idx.h"
#include "models/builders.h"
#include "models/model.h"
#include "models/model_spec.h"

namespace {

using namespace cajal;
using engine::Tensor;
namespace train = engine::train;

engine::Net make_training_net(const nlohmann::json& graph, int spatial_dims, std::uint64_t seed) {
  nlohmann::json doc = graph;
  doc["format"] = "cajal-model";
  doc["format_version"] = models::kFormatVersion;
  doc["run"] = {{"input_channels", 1}, {"spatial_dims", spatial_dims}};
  const auto spec = models::parse_model_spec(doc, "bench");
  auto nodes = models::make_nodes(spec);
  train::Generator generator(seed);
  train::InitConfig init;
  init.scheme = train::InitScheme::xavier_uniform;
  engine::WeightMap weights;
  for (const auto& node : nodes) {
    for (const auto& w : node.layer->weight_specs()) {
      Tensor t(w.dims,
               w.role == "running_var" || (w.role == "weight" && w.dims.size() == 1) ? 1.0f : 0.0f);
      if (w.role == "weight" && w.dims.size() >= 2) {
        train::initialize_weights(t, init, generator);
      }
      weights[node.layer->name() + "." + w.role] = std::move(t);
    }
  }
  engine::Net net(spec.inputs, std::move(nodes), spec.outputs, engine::NetOptions::for_training());
  net.load_weights(weights);
  net.set_training(true);
  return net;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One step: forward, loss, backward, Adam.
double step(engine::Net& net, train::Optimizer& optimizer, Tensor images, const Tensor& targets) {
  net.zero_grad();
  const auto out = net.forward({{"image", std::move(images)}});
  auto loss = train::cross_entropy(out.begin()->second, targets, {});
  net.backward({{net.outputs()[0], std::move(loss.diff_logits)}});
  optimizer.step();  // the next forward() refreshes the layers' copies of the weights
  return loss.value;
}

int run_lenet5(int threads) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const auto images = io::read_idx(dir + "train-images-idx3-ubyte.gz");
  const auto labels = io::read_idx(dir + "train-labels-idx1-ubyte.gz");
  engine::Context ctx(threads);
  engine::Net net = make_training_net(models::build_lenet5({}), 2, 1);
  const std::int64_t batch = 64;
  net.prepare(ctx, {{"image", {batch, 1, 32, 32}}});
  train::Optimizer optimizer({.type = train::OptimizerType::adam}, net.parameters());
  const std::int64_t count = 55000;
  std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    indices[static_cast<std::size_t>(i)] = i;
  }
  train::EpochSampler sampler(indices, {.batch_size = batch, .drop_last = true, .seed = 1});
  // Every image normalised and padded to 32 x 32 before the clock starts, as PyTorch's side does
  // (lenet5_torch.load); each batch then copies its images.
  std::vector<float> padded(static_cast<std::size_t>(count * 1024),
                            static_cast<float>(-0.2860 / 0.3530));
  for (std::int64_t i = 0; i < count; ++i) {
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        padded[static_cast<std::size_t>(i * 1024 + (r + 2) * 32 + c + 2)] = static_cast<float>(
            (images.values[static_cast<std::size_t>(i * 784 + r * 28 + c)] / 255.0 - 0.2860) /
            0.3530);
      }
    }
  }
  const auto start = std::chrono::steady_clock::now();
  double loss = 0.0;
  for (std::int64_t b = 0; b < sampler.batches_per_epoch(); ++b) {
    Tensor x({batch, 1, 32, 32});
    Tensor y({batch});
    const auto picked = sampler.next_batch();
    for (std::int64_t j = 0; j < batch; ++j) {
      const std::int64_t i = picked[static_cast<std::size_t>(j)];
      std::copy_n(padded.begin() + i * 1024, 1024, x.data() + j * 1024);
      y.data()[j] = labels.values[static_cast<std::size_t>(i)];
    }
    loss = step(net, optimizer, std::move(x), y);
  }
  std::printf("%s\n", nlohmann::json({{"tool", "cajal"},
                                      {"case", "lenet5_epoch"},
                                      {"threads", threads},
                                      {"seconds", seconds_since(start)},
                                      {"last_loss", loss}})
                          .dump()
                          .c_str());
  return 0;
}

// `ct`: the CT model's shape, else the 64^3 case. Labels drawn at random (12 classes or 2, 30 %
// foreground), the image the label plus noise.
int run_unet3d(int threads, int steps, bool ct) {
  engine::Context ctx(threads);
  models::UNetConfig config;
  config.out_channels = ct ? 12 : 2;
  if (ct) {
    config.features = {8, 16, 32, 64, 128};
  }
  nlohmann::json graph = models::build_unet(config);
  engine::Net net = make_training_net(graph, 3, 1);
  const engine::Dims input = ct ? engine::Dims{2, 1, 32, 96, 96} : engine::Dims{1, 1, 64, 64, 64};
  net.prepare(ctx, {{"image", input}});
  train::Optimizer optimizer({.type = train::OptimizerType::adam}, net.parameters());
  train::Generator random(7);
  Tensor x(input);
  Tensor y({input[0], input[2], input[3], input[4]});
  for (std::int64_t i = 0; i < x.size(); ++i) {
    y.data()[i] = ct ? static_cast<float>(random.below(12)) : random.chance(0.3) ? 1.0f : 0.0f;
    x.data()[i] = y.data()[i] + static_cast<float>(random.normal(0.0, 0.5));
  }
  step(net, optimizer, x, y);  // warm-up
  std::vector<double> times;
  double loss = 0.0;
  for (int s = 0; s < steps; ++s) {
    const auto start = std::chrono::steady_clock::now();
    loss = step(net, optimizer, x, y);
    times.push_back(seconds_since(start));
  }
  double total = 0.0;
  for (const double t : times) {
    total += t;
  }
  std::sort(times.begin(), times.end());
  std::printf("%s\n", nlohmann::json({{"tool", "cajal"},
                                      {"case", ct ? "unet3d_ct_steps" : "unet3d_64_steps"},
                                      {"threads", threads},
                                      {"steps", steps},
                                      {"seconds", total},
                                      {"median_step_seconds", times[times.size() / 2]},
                                      {"last_loss", loss}})
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: train_bench lenet5|unet3d|unet3d_ct [--threads N] [--steps N]\n");
    return 1;
  }
  int threads = 2;
  int steps = 50;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) {
      threads = std::stoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--steps") == 0) {
      steps = std::stoi(argv[i + 1]);
    }
  }
  try {
    const std::string name = argv[1];
    return name == "lenet5" ? run_lenet5(threads) : run_unet3d(threads, steps, name == "unet3d_ct");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
}
