#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "io/volume_io.h"
#include "pipeline/phantom.h"
#include "pipeline/preprocess.h"
#include "pipeline/train_config.h"
#include "pipeline/train_data.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

models::RunConfig ct_run(engine::Dims patch) {
  models::RunConfig run;
  run.spatial_dims = 3;
  run.patch_size = std::move(patch);
  run.target_spacing = {3.0, 2.5, 2.5};
  run.orientation = "LPS";
  run.normalization.kind = "ct";
  run.normalization.clip_min = -1000;
  run.normalization.clip_max = 1000;
  run.normalization.mean = 0;
  run.normalization.std = 250;
  run.crop.kind = "body";
  run.labels = {"background"};
  for (const auto& label : phantom_labels()) {
    run.labels.push_back(label.name);
  }
  return run;
}

PhantomCase small_case(const std::string& orientation, int index = 0) {
  PhantomOptions options;
  options.seed = 5;
  options.size = {96, 80, 60};
  options.in_plane_spacing = 1.7;
  options.slice_thickness = 3.5;
  options.orientation = orientation;
  return generate_phantom_case(make_phantom_case_spec(options, index));
}

// Mean normalised intensity of the voxels of each label.
std::map<int, double> mean_by_label(const engine::Tensor& image, const engine::Tensor& target) {
  std::map<int, double> sum;
  std::map<int, double> n;
  for (std::int64_t v = 0; v < target.size(); ++v) {
    const int label = static_cast<int>(target.data()[v]);
    sum[label] += image.data()[v];
    n[label] += 1;
  }
  for (auto& [label, s] : sum) {
    s /= n[label];
  }
  return sum;
}

// The labels follow their image through reorientation, crop, resampling and padding: on the
// preprocessed grid the lungs are dark and the heart and liver soft tissue, for an input stored
// in a flipped coronal orientation as for an axial one.
TEST(PreprocessLabels, LabelsStayOnTheirTissue) {
  for (const std::string orientation : {"LPS", "RIA", "LIP"}) {
    const PhantomCase phantom = small_case(orientation);
    const auto run = ct_run({16, 48, 48});
    const auto pre = preprocess(phantom.ct, run);
    const core::Volume labels = preprocess_labels(phantom.labels, pre.record);
    ASSERT_EQ(labels.geometry.size, pre.image.geometry.size) << orientation;
    std::map<int, double> sum;
    std::map<int, double> n;
    for (std::size_t v = 0; v < labels.pixels.size(); ++v) {
      sum[static_cast<int>(labels.pixels[v])] += pre.image.pixels[v];
      n[static_cast<int>(labels.pixels[v])] += 1;
    }
    const double hu_per_unit = 250.0;
    EXPECT_LT(sum[2] / n[2] * hu_per_unit, -600.0) << orientation << ": Lung_L";
    EXPECT_LT(sum[3] / n[3] * hu_per_unit, -600.0) << orientation << ": Lung_R";
    EXPECT_NEAR(sum[4] / n[4] * hu_per_unit, 42.0, 40.0) << orientation << ": Heart";
    EXPECT_NEAR(sum[5] / n[5] * hu_per_unit, 60.0, 40.0) << orientation << ": Liver";
    // Model grid is LPS: the left lung (+x) lies at larger i than the right one.
    double i_left = 0;
    double i_right = 0;
    const auto& size = labels.geometry.size;
    for (std::size_t v = 0; v < labels.pixels.size(); ++v) {
      const double i = static_cast<double>(static_cast<std::int64_t>(v) % size[0]);
      if (labels.pixels[v] == 2.0f) {
        i_left += i / n[2];
      } else if (labels.pixels[v] == 3.0f) {
        i_right += i / n[3];
      }
    }
    EXPECT_GT(i_left, i_right + 5) << orientation;
  }
}

// Preprocessing then restoring a label map on a grid that needs no resampling gives it back.
TEST(PreprocessLabels, RestoreUndoesIt) {
  PhantomCase phantom = small_case("RAS");
  auto run = ct_run({80, 16, 16});  // padding along k
  run.target_spacing.clear();
  const auto pre = preprocess(phantom.ct, run);
  const core::Volume labels = preprocess_labels(phantom.labels, pre.record);
  const core::Volume back = restore_labels(labels, pre.record);
  // Outside the body crop the restored map is background; the phantom has External there only
  // where the crop's margin kept it, so compare inside the crop: every label voxel survives.
  std::int64_t lost = 0;
  for (std::size_t v = 0; v < back.pixels.size(); ++v) {
    lost += back.pixels[v] != phantom.labels.pixels[v] ? 1 : 0;
  }
  EXPECT_EQ(lost, 0);
}

TEST(PreprocessLabels, RefusesAnotherGrid) {
  const PhantomCase phantom = small_case("LPS");
  const auto pre = preprocess(phantom.ct, ct_run({16, 32, 32}));
  core::Volume other = phantom.labels;
  other.geometry.spacing[0] *= 1.5;
  EXPECT_THROW(preprocess_labels(other, pre.record), Error);
}

TrainDataConfig phantom_data() {
  TrainDataConfig data;
  data.kind = "phantom";
  data.count = 2;
  data.test_count = 1;
  data.data_seed = 3;
  data.min_in_plane_spacing = 2.5;
  data.max_in_plane_spacing = 3.0;
  data.min_slice_thickness = 3.0;
  data.max_slice_thickness = 4.0;
  data.patches_per_case = 5;
  data.test_patches_per_case = 3;
  data.foreground_fraction = 1.0;
  return data;
}

TEST(VolumeSamples, PhantomPatchesAreAlignedAndDeterministic) {
  const auto run = ct_run({16, 32, 32});
  const auto samples = open_samples(phantom_data(), run, false);
  ASSERT_EQ(samples->size(), 10);
  EXPECT_EQ(samples->image_dims(), (engine::Dims{1, 16, 32, 32}));
  EXPECT_EQ(samples->target_dims(), (engine::Dims{16, 32, 32}));
  EXPECT_EQ(samples->classes(), 12);
  const auto test = open_samples(phantom_data(), run, true);
  ASSERT_NE(test, nullptr);
  EXPECT_EQ(test->size(), 3);
  std::int64_t lung_voxels = 0;
  for (std::int64_t i = 0; i < samples->size(); ++i) {
    const Sample a = samples->get(i);
    const Sample b = samples->get(i);
    ASSERT_EQ(a.image.dims(), samples->image_dims());
    ASSERT_EQ(a.target.dims(), samples->target_dims());
    EXPECT_TRUE(std::equal(a.image.data(), a.image.data() + a.image.size(), b.image.data()));
    std::int64_t foreground = 0;
    for (std::int64_t v = 0; v < a.target.size(); ++v) {
      foreground += a.target.data()[v] > 1.0f ? 1 : 0;  // an organ, not External
    }
    // foreground_fraction 1: every patch is centred on a voxel of some present label.
    EXPECT_GT(foreground + std::count(a.target.data(), a.target.data() + a.target.size(), 1.0f), 0)
        << i;
    const auto means = mean_by_label(a.image, a.target);
    for (const int lung : {2, 3}) {
      if (means.count(lung) != 0) {
        EXPECT_LT(means.at(lung) * 250.0, -500.0) << "patch " << i;
        lung_voxels += 1;
      }
    }
  }
  EXPECT_GT(lung_voxels, 0);
  // Training draws differ from step to step and from the fixed patch.
  const Sample fixed = samples->get(0);
  const Sample drawn1 = samples->draw(0, 1);
  const Sample drawn2 = samples->draw(0, 2);
  const Sample again = samples->draw(0, 1);
  EXPECT_TRUE(std::equal(drawn1.image.data(), drawn1.image.data() + drawn1.image.size(),
                         again.image.data()));
  EXPECT_FALSE(std::equal(drawn1.image.data(), drawn1.image.data() + drawn1.image.size(),
                          drawn2.image.data()));
  EXPECT_FALSE(
      std::equal(fixed.image.data(), fixed.image.data() + fixed.image.size(), drawn1.image.data()));
}

// Foreground patches centred by label weight: with every label but the left kidney at 0, every
// drawn patch holds some of it; drawn uniformly (no weights), some patches hold none.
TEST(VolumeSamples, ForegroundLabelWeightsChooseTheCentres) {
  const auto run = ct_run({8, 16, 16});
  const auto kidney_patches = [&](const TrainDataConfig& data) {
    const auto samples = open_samples(data, run, false);
    int with_kidney = 0;
    for (std::uint64_t step = 0; step < 20; ++step) {
      const Sample drawn = samples->draw(static_cast<std::int64_t>(step % 10), step);
      const float* t = drawn.target.data();
      with_kidney += std::count(t, t + drawn.target.size(), 7.0f) > 0 ? 1 : 0;
    }
    return with_kidney;
  };
  TrainDataConfig weighted = phantom_data();
  for (const auto& label : phantom_labels()) {
    weighted.foreground_label_weights.emplace_back(label.name, label.name == "Kidney_L" ? 1 : 0);
  }
  EXPECT_EQ(kidney_patches(weighted), 20);
  EXPECT_LT(kidney_patches(phantom_data()), 20);

  TrainDataConfig unknown = phantom_data();
  unknown.foreground_label_weights = {{"Kidney", 2.0}};
  try {
    open_samples(unknown, run, false);
    FAIL() << "a weight for a label the model does not have should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'Kidney'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Kidney_L"), std::string::npos) << e.what();
  }
}

TEST(VolumeSamples, FilesFromFolderAndCsv) {
  const fs::path dir = fs::temp_directory_path() / "cajal_train_volumes_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  const PhantomCase phantom = small_case("LPS", 1);
  io::write_volume(phantom.ct, dir / "a" / "ct.nii.gz");
  io::write_volume(phantom.labels, dir / "a" / "labels.nii.gz");
  io::write_volume(phantom.ct, dir / "b" / "image.nii.gz");  // not a case: no ct.nii.gz
  TrainDataConfig data;
  data.kind = "volumes";
  data.cases = dir;
  data.patches_per_case = 2;
  const auto run = ct_run({16, 32, 32});
  EXPECT_EQ(open_samples(data, run, false)->size(), 2);
  EXPECT_EQ(open_samples(data, run, true), nullptr);

  std::ofstream(dir / "cases.csv") << "image,label\na/ct.nii.gz,a/labels.nii.gz\n"
                                   << "a/ct.nii.gz,a/labels.nii.gz\n";
  data.cases = dir / "cases.csv";
  EXPECT_EQ(open_samples(data, run, false)->size(), 4);

  // Labels beyond the model's: refused, naming the case and the value.
  auto few = run;
  few.labels.resize(4);
  try {
    open_samples(data, few, false);
    ADD_FAILURE() << "labels beyond the run configuration's were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("whole values 0 to 3"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "bad.csv") << "a/ct.nii.gz;a/labels.nii.gz\n";
  data.cases = dir / "bad.csv";
  EXPECT_THROW(open_samples(data, run, false), Error);
  fs::remove_all(dir);
}

// shapes2d (the 2D U-Net's data): a pixel of one shape's label beside a pixel of another label.
bool different_shapes_touch(const engine::Tensor& label, std::int64_t n) {
  const float* l = label.data();
  for (std::int64_t y = 0; y < n; ++y) {
    for (std::int64_t x = 0; x < n; ++x) {
      const float here = l[y * n + x];
      const bool right = x + 1 < n && l[y * n + x + 1] > 0 && here > 0 && l[y * n + x + 1] != here;
      const bool below =
          y + 1 < n && l[(y + 1) * n + x] > 0 && here > 0 && l[(y + 1) * n + x] != here;
      if (right || below) {
        return true;
      }
    }
  }
  return false;
}

TEST(ShapesData, ShapesPlacedApartNeverTouch) {
  TrainDataConfig config;
  config.kind = "shapes2d";
  config.size = 64;
  config.classes = 4;
  int touching = 0;
  int touching_apart = 0;
  int with_foreground = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    config.overlap = true;
    touching += different_shapes_touch(make_shapes_sample(config, seed).target, 64) ? 1 : 0;
    config.overlap = false;
    const Sample apart = make_shapes_sample(config, seed);
    touching_apart += different_shapes_touch(apart.target, 64) ? 1 : 0;
    const auto& t = apart.target;
    with_foreground += std::any_of(t.data(), t.data() + t.size(), [](float v) { return v > 0; });
  }
  EXPECT_GT(touching, 20) << "overlapping shapes (the default) should often touch";
  EXPECT_EQ(touching_apart, 0);
  EXPECT_EQ(with_foreground, 200);
}

}  // namespace
}  // namespace cajal::pipeline
