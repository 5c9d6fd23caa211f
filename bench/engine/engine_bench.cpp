// engine_bench: times cajal's engine on one model folder and one input, prints one JSON line.
//
//   engine_bench MODEL_DIR --dims 1,1,96,96,96 [--input X.f32] [--output Y.f32]
//                [--threads 2] [--warmup 1] [--runs 5] [--layers]
//
// X.f32 and Y.f32 are raw little-endian float32 in N C [D] H W order (run.sh writes the input
// with NumPy, the same bytes PyTorch and ONNX Runtime read). Without --input the input is zeros.
// Warm-up forwards are not timed; the median is over the timed ones. --layers also writes each
// layer's output dims and FLOPs to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/context.h"
#include "engine/tensor.h"
#include "models/model.h"

namespace {

struct Options {
  std::string model_dir;
  cajal::engine::Dims dims;
  std::string input_path;
  std::string output_path;
  int threads = 2;
  int warmup = 1;
  int runs = 5;
  bool layers = false;
};

cajal::engine::Dims parse_dims(const std::string& text) {
  cajal::engine::Dims dims;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    dims.push_back(std::stoll(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return dims;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw cajal::Error("option " + arg, "a value", "nothing");
      return argv[++i];
    };
    if (arg == "--dims") {
      options.dims = parse_dims(value());
    } else if (arg == "--input") {
      options.input_path = value();
    } else if (arg == "--output") {
      options.output_path = value();
    } else if (arg == "--threads") {
      options.threads = std::stoi(value());
    } else if (arg == "--warmup") {
      options.warmup = std::stoi(value());
    } else if (arg == "--runs") {
      options.runs = std::stoi(value());
    } else if (arg == "--layers") {
      options.layers = true;
    } else if (options.model_dir.empty() && arg.rfind("--", 0) != 0) {
      options.model_dir = arg;
    } else {
      throw cajal::Error("argument", "MODEL_DIR or a known option", "'" + arg + "'");
    }
  }
  if (options.model_dir.empty() || options.dims.empty() || options.runs < 1) {
    throw cajal::Error("usage",
                       "engine_bench MODEL_DIR --dims N,C,... [--input X.f32] [--output Y.f32] "
                       "[--threads T] [--warmup W] [--runs R>=1]",
                       "missing arguments");
  }
  return options;
}

std::vector<float> read_f32(const std::string& path, std::int64_t count) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file)
    throw cajal::Error("cannot open '" + path + "'");
  const auto bytes = static_cast<std::int64_t>(file.tellg());
  const std::int64_t expected = count * static_cast<std::int64_t>(sizeof(float));
  if (bytes != expected) {
    throw cajal::Error("size of '" + path + "'", std::to_string(expected) + " bytes",
                       std::to_string(bytes));
  }
  std::vector<float> values(static_cast<std::size_t>(count));
  file.seekg(0);
  file.read(reinterpret_cast<char*>(values.data()), expected);
  return values;
}

void write_f32(const std::string& path, const cajal::engine::Tensor& tensor) {
  std::ofstream file(path, std::ios::binary);
  file.write(
      reinterpret_cast<const char*>(tensor.data()),
      static_cast<std::streamsize>(tensor.size() * static_cast<std::int64_t>(sizeof(float))));
  if (!file)
    throw cajal::Error("cannot write '" + path + "'");
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string json_list(const std::vector<double>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "%s%.3f", i ? ", " : "", values[i]);
    text += number;
  }
  return text + "]";
}

int run(const Options& options) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto model = cajal::models::Model::load(options.model_dir);
  cajal::engine::Net& net = model.net();
  if (net.inputs().size() != 1) {
    throw cajal::Error("model inputs", "1", std::to_string(net.inputs().size()));
  }
  const std::string& input_name = net.inputs().front();
  const std::int64_t count = cajal::engine::element_count(options.dims);
  cajal::engine::Tensor input =
      options.input_path.empty()
          ? cajal::engine::Tensor(options.dims)
          : cajal::engine::Tensor(options.dims, read_f32(options.input_path, count));

  const cajal::engine::Context ctx(options.threads);
  net.prepare(ctx, {{input_name, options.dims}});
  if (options.layers) {
    for (const auto& node : net.nodes()) {
      std::fprintf(stderr, "%-32s %-24s %12.3f GFLOP\n", node.layer->name().c_str(),
                   cajal::engine::to_string(net.blob_dims(node.output)).c_str(),
                   static_cast<double>(node.layer->flops()) * 1e-9);
    }
  }
  const double prepare_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();

  std::map<std::string, cajal::engine::Tensor> outputs;
  for (int i = 0; i < options.warmup; ++i)
    outputs = net.forward({{input_name, input}});
  std::vector<double> times_ms;
  for (int i = 0; i < options.runs; ++i) {
    const auto start = Clock::now();
    outputs = net.forward({{input_name, input}});
    times_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  if (!options.output_path.empty())
    write_f32(options.output_path, outputs.at(net.outputs().front()));

  const double median_ms = median(times_ms);
  const double flops = static_cast<double>(net.flops());
  std::printf(
      "{\"peer\": \"cajal\", \"threads\": %d, \"warmup\": %d, \"runs\": %d, \"median_ms\": %.3f, "
      "\"times_ms\": %s, \"flops\": %.0f, \"gflops\": %.2f, \"load_prepare_ms\": %.1f, "
      "\"activation_bytes\": %lld}\n",
      ctx.threads(), options.warmup, options.runs, median_ms, json_list(times_ms).c_str(), flops,
      flops / (median_ms * 1e6), prepare_ms, static_cast<long long>(net.activation_bytes()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
}
