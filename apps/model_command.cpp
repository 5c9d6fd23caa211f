#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "pipeline/model_run.h"

namespace cajal::apps {
namespace {

struct InspectOptions {
  std::string dir;
  std::string input_shape;
  bool json = false;
};

}  // namespace

void add_model_command(CLI::App& app) {
  CLI::App* command =
      app.add_subcommand("model", "Inspect a model folder or run it on a raw tensor (.npy)");
  command->require_subcommand(1);

  auto inspect = std::make_shared<InspectOptions>();
  CLI::App* inspect_command = command->add_subcommand(
      "inspect", "Layers, output shapes, parameters, FLOPs and peak activation memory");
  inspect_command->add_option("dir", inspect->dir, "Model folder")->required();
  inspect_command->add_option("--input-shape", inspect->input_shape,
                              "N,C,[D,]H,W (default: 1, input channels, the run "
                              "configuration's patch size)");
  inspect_command->add_flag("--json", inspect->json, "Print JSON instead of text");
  inspect_command->callback([inspect] {
    const auto description = pipeline::describe_model(
        inspect->dir, inspect->input_shape.empty() ? std::vector<std::int64_t>{}
                                                   : pipeline::parse_shape(inspect->input_shape));
    if (inspect->json) {
      std::cout << pipeline::to_json(description).dump(2) << "\n";
    } else {
      std::cout << pipeline::to_text(description);
    }
  });

  auto run = std::make_shared<pipeline::ModelRunOptions>();
  CLI::App* run_command =
      command->add_subcommand("run", "Run a model on a tensor from a NumPy .npy file");
  run_command->add_option("dir", run->model_dir, "Model folder")->required();
  run_command->add_option("--input", run->input, ".npy input, N C [D] H W")->required();
  run_command->add_option("--output", run->output, ".npy output (float32)")->required();
  run_command->add_option("--output-blob", run->output_blob,
                          "Which of the model's outputs to write (default: the first)");
  run_command->add_option("--threads", run->threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  run_command->callback([run] { pipeline::run_model(*run); });
}

}  // namespace cajal::apps
