#include "pipeline/train_data.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"

#include "engine/train/random.h"
#include "pipeline/classify_regions.h"
#include "pipeline/phantom.h"

namespace cajal::pipeline {
namespace {

TEST(TrainLesions, OneSamplePerLesionCutAsClassifyCutsIt) {
  TrainDataConfig config;
  config.kind = "lesions";
  config.count = 2;
  config.data_seed = 3;
  config.lesion_grid = {96, 96, 48};
  config.lesion_in_plane_spacing = 2.0;
  config.lesion_slice_thickness = 3.0;
  models::RunConfig run;
  run.task = "classification";
  run.spatial_dims = 3;
  run.patch_size = {8, 8, 8};  // a 12 mm field: most lesions enlarge it
  run.target_spacing = {1.5, 1.5, 1.5};
  run.labels = {"benign", "malignant"};
  const auto samples = open_samples(config, run, false);
  ASSERT_NE(samples, nullptr);
  EXPECT_EQ(samples->image_dims(), (engine::Dims{1, 8, 8, 8}));
  EXPECT_EQ(samples->classes(), 2);

  // The same cases, generated as the data kind generates them.
  PhantomOptions options;
  options.seed = engine::train::mix_seed(3, 1);
  options.size = {96, 96, 48};
  options.in_plane_spacing = 2.0;
  options.slice_thickness = 3.0;
  options.orientation = "vary";
  options.lesions = true;
  std::int64_t next = 0;
  for (int index = 0; index < 2; ++index) {
    const PhantomCase phantom = generate_phantom_case(make_phantom_case_spec(options, index), 1);
    std::map<int, std::string> truth;
    for (const PhantomLesion& lesion : phantom.lesions) {
      if (lesion.voxels > 0) {
        truth[lesion.id] = lesion.label;
      }
    }
    const auto regions =
        mask_regions(phantom.ct, *phantom.lesion_labels, phantom.spec.case_id, {}, run);
    ASSERT_EQ(regions.size(), truth.size());
    for (const Region& region : regions) {
      ASSERT_LT(next, samples->size());
      const Sample sample = samples->get(next++);
      const int id = std::stoi(region.id.substr(region.id.rfind('_') + 1));
      EXPECT_EQ(sample.target.data()[0], truth.at(id) == "malignant" ? 1.0f : 0.0f) << region.id;
      const engine::Tensor crop = crop_region(phantom.ct, region, run);
      ASSERT_EQ(crop.dims(), sample.image.dims());
      for (std::int64_t v = 0; v < engine::element_count(crop.dims()); ++v) {
        ASSERT_EQ(crop.data()[v], sample.image.data()[v]) << region.id << " voxel " << v;
      }
    }
  }
  EXPECT_EQ(next, samples->size());
  EXPECT_GT(next, 0);
}

TEST(TrainLesions, RefusesLabelsOtherThanBenignAndMalignant) {
  TrainDataConfig config;
  config.kind = "lesions";
  config.count = 1;
  models::RunConfig run;
  run.spatial_dims = 3;
  run.patch_size = {8, 8, 8};
  run.target_spacing = {2.0, 2.0, 2.0};
  run.labels = {"cyst", "tumour"};
  EXPECT_THROW(open_samples(config, run, false), Error);
}

}  // namespace
}  // namespace cajal::pipeline
