// `cajal train` data of kind "lesions" (issue 6): phantom cases with lesions generated once at
// open; every lesion becomes one classification sample, its region cut from the CT exactly as
// `cajal classify --roi lesions.nii.gz` cuts it (pipeline/classify_regions.h), its target the
// index of its class ("benign", "malignant") in run.labels.
#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "engine/train/random.h"
#include "pipeline/classify_regions.h"
#include "pipeline/phantom.h"
#include "pipeline/train_data.h"

namespace cajal::pipeline {
namespace {

using engine::Tensor;

PhantomOptions lesion_phantom_options(const TrainDataConfig& config, std::uint64_t stream) {
  PhantomOptions options;
  options.seed = engine::train::mix_seed(config.data_seed, stream);
  options.size = {config.lesion_grid[0], config.lesion_grid[1], config.lesion_grid[2]};
  options.in_plane_spacing = config.lesion_in_plane_spacing;
  options.slice_thickness = config.lesion_slice_thickness;
  options.orientation = "vary";
  options.lesions = true;
  return options;
}

int render_threads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

class LesionSamples final : public SampleSet {
 public:
  LesionSamples(const TrainDataConfig& config, const models::RunConfig& run, bool test)
      : run_(run) {
    if (run.labels != std::vector<std::string>{"benign", "malignant"}) {
      throw Error("run configuration's labels for 'lesions' training data",
                  "[\"benign\", \"malignant\"]", std::to_string(run.labels.size()) + " labels");
    }
    if (run.spatial_dims != 3) {
      throw Error("run configuration for 'lesions' training data", "a 3D model (spatial_dims 3)",
                  std::to_string(run.spatial_dims) + "D");
    }
    model_field_mm(run);
    const PhantomOptions options = lesion_phantom_options(config, test ? 2 : 1);
    const int count = static_cast<int>(test ? config.test_count : config.count);
    for (int index = 0; index < count; ++index) {
      // Rendering threads never change a case's bytes (phantom.h), so all cores render.
      add_case(generate_phantom_case(make_phantom_case_spec(options, index), render_threads()),
               config.lesion_margin_mm);
      if ((index + 1) % 10 == 0 || index + 1 == count) {
        core::log_info(std::string(test ? "test " : "") +
                       "lesion cases: " + std::to_string(index + 1) + " of " +
                       std::to_string(count) + ", " + std::to_string(samples_.size()) + " lesions");
      }
    }
    if (samples_.empty()) {
      throw Error("'lesions' training data", "at least one lesion", "none in the cases generated");
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(samples_.size()); }
  Sample get(std::int64_t index) const override {
    CAJAL_CHECK(index >= 0 && index < size()) << "sample index out of range";
    return samples_[static_cast<std::size_t>(index)];
  }
  engine::Dims image_dims() const override { return samples_.front().image.dims(); }
  engine::Dims target_dims() const override { return {1}; }
  std::int64_t classes() const override { return 2; }

 private:
  void add_case(const PhantomCase& phantom, double margin_mm) {
    CAJAL_CHECK(phantom.lesion_labels) << "phantom case without lesion labels";
    const std::vector<Region> regions =
        mask_regions(phantom.ct, *phantom.lesion_labels, phantom.spec.case_id,
                     MaskRegionOptions{std::nullopt, margin_mm}, run_);
    for (const Region& region : regions) {
      const int value = std::stoi(region.id.substr(region.id.rfind('_') + 1));
      const auto lesion = std::find_if(phantom.lesions.begin(), phantom.lesions.end(),
                                       [value](const PhantomLesion& l) { return l.id == value; });
      CAJAL_CHECK(lesion != phantom.lesions.end()) << "no ground truth for " << region.id;
      const auto label = std::find(run_.labels.begin(), run_.labels.end(), lesion->label);
      CAJAL_CHECK(label != run_.labels.end()) << "lesion class " << lesion->label;
      Tensor target({1}, static_cast<float>(label - run_.labels.begin()));
      samples_.push_back({crop_region(phantom.ct, region, run_), std::move(target)});
    }
  }

  models::RunConfig run_;
  std::vector<Sample> samples_;
};

}  // namespace

std::unique_ptr<SampleSet> open_lesion_samples(const TrainDataConfig& config,
                                               const models::RunConfig& run, bool test) {
  if (test && config.test_count == 0) {
    return nullptr;
  }
  return std::make_unique<LesionSamples>(config, run, test);
}

}  // namespace cajal::pipeline
