// `cajal train CONFIG.json`: what a training run reads. Every key is documented in
// docs/training.md; unknown keys are rejected, so a typo is an error and not a default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/train/augment.h"
#include "engine/train/init.h"
#include "engine/train/loss.h"
#include "engine/train/optimizer.h"
#include "engine/train/schedule.h"

namespace cajal::pipeline {

// Where the samples come from.
struct TrainDataConfig {
  // "type": idx, MNIST-style IDX files (classification); shapes2d, generated 2D images of
  // shapes with their masks (segmentation).
  std::string kind = "idx";
  // idx
  std::filesystem::path train_images;
  std::filesystem::path train_labels;
  std::filesystem::path test_images;  // optional: test accuracy at the end
  std::filesystem::path test_labels;
  std::int64_t pad = 0;      // zero border in pixels (LeNet-5: 28x28 padded to 32x32)
  double scale = 1.0 / 255;  // value = (byte * scale - mean) / std
  double mean = 0.0;
  double std = 1.0;
  std::int64_t limit = 0;  // use only the first N training samples (0: all); for short runs
  // shapes2d
  std::int64_t count = 0;  // training samples generated
  std::int64_t test_count = 0;
  std::int64_t size = 64;    // image side in pixels
  std::int64_t classes = 3;  // labels 0 (background) .. classes - 1
  double noise = 0.1;        // Gaussian noise stddev (signal contrast is 1)
  // false: each shape is placed apart from the others (up to 100 tries, else left out). Where
  // shapes overlap, the later one's label covers the earlier one's pixels while their
  // brightness may differ by little: labels the image cannot tell.
  bool overlap = true;
  std::uint64_t data_seed = 1;
  // volumes (cases read from files) and phantom (cases generated like `cajal phantom`): 3D
  // segmentation on patches of the run configuration's patch_size, cut from cases preprocessed
  // as the run configuration says (docs/training.md, "Volumes").
  std::filesystem::path cases;           // volumes: a folder of case folders, or a CSV image,label
  std::filesystem::path test_cases;      // volumes: optional, the same
  std::string image_name = "ct.nii.gz";  // in each case folder
  std::string label_name = "labels.nii.gz";  // in each case folder
  std::int64_t patches_per_case = 8;         // training samples per case and epoch
  std::int64_t test_patches_per_case = 4;
  double foreground_fraction = 0.33;  // of patches centred on a voxel of a random present label
  // How often each label is drawn for those patches, by name (unlisted: 1; all 1: uniformly).
  std::vector<std::pair<std::string, double>> foreground_label_weights;
  // phantom: count and test_count cases; spacing drawn per case from these ranges (mm)
  double min_in_plane_spacing = 1.0;
  double max_in_plane_spacing = 2.0;
  double min_slice_thickness = 1.0;
  double max_slice_thickness = 5.0;
  // lesions: count and test_count phantom cases with lesions on a grid of lesion_grid voxels
  // (x, y, z) at these spacings; every lesion one classification sample, cut as `cajal classify
  // --roi` cuts it (docs/classify.md, "Training data").
  std::vector<std::int64_t> lesion_grid{96, 96, 96};
  double lesion_in_plane_spacing = 2.0;
  double lesion_slice_thickness = 3.0;
  double lesion_margin_mm = 5.0;
};

struct TrainConfig {
  std::filesystem::path source;  // the config file, for messages and relative paths
  // The network: {"builder": ...} (models/builders.h) or {"spec": "model.json"} relative to the
  // config file.
  nlohmann::json architecture;
  // The run configuration written into the trained model's model.json ("run" of
  // docs/model-format.md); labels name the output channels.
  nlohmann::json run;
  nlohmann::json card;  // name, version, intended_use of the trained model's card.json
  engine::train::InitConfig init;
  // Transfer learning: start from this model folder's weights (by name) and freeze the layers
  // whose names start with one of `freeze`.
  std::filesystem::path initial_weights;
  std::vector<std::string> freeze;
  TrainDataConfig data;
  double validation_fraction = 0.1;
  std::string task = "classification";  // classification | segmentation (from run.task)
  engine::train::LossConfig loss;
  engine::train::OptimizerConfig optimizer;
  engine::train::ScheduleConfig schedule;   // indexed by optimiser step
  bool schedule_per_epoch = false;          // index by epoch instead
  bool schedule_total_steps_given = false;  // else: the epochs' steps (or epochs) after warm-up
  double clip_grad_norm = 0.0;              // 0: no clipping
  engine::train::AugmentConfig augment;
  bool augment_enabled = false;
  std::int64_t epochs = 1;
  std::int64_t batch_size = 32;
  std::uint64_t seed = 1;
  int threads = 0;
  std::filesystem::path output;  // the trained model folder
};

// Reads and checks a config; paths are resolved against the config file's folder. Throws
// cajal::Error naming the file and key.
TrainConfig read_train_config(const std::filesystem::path& path);
TrainConfig parse_train_config(const nlohmann::json& doc, const std::filesystem::path& source);

}  // namespace cajal::pipeline
