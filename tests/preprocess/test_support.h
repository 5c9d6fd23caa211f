// Helpers shared by the preprocessing, inference and postprocessing tests.
#pragma once

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "core/volume.h"
#include "engine/context.h"
#include "models/model.h"
#include "pipeline/inference.h"
#include "pipeline/phantom.h"
#include "pipeline/preprocess.h"

namespace cajal::testing {

inline std::filesystem::path tiny_model_dir() {
  return std::filesystem::path(CAJAL_PREPROCESS_FIXTURES) / "tiny_seg3d";
}

// Random weights, total stride 4: labels that depend on a wide context.
inline std::filesystem::path context_model_dir() {
  return std::filesystem::path(CAJAL_PREPROCESS_FIXTURES) / "context_seg3d";
}

// A small synthetic CT (int16 HU) with organ labels, stored in `orientation`.
inline pipeline::PhantomCase small_phantom(const std::string& orientation,
                                           core::Index3 size = {48, 40, 12}) {
  pipeline::PhantomOptions options;
  options.size = size;
  options.in_plane_spacing = 8.0;
  options.slice_thickness = 10.0;
  options.orientation = orientation;
  options.seed = 7;
  return pipeline::generate_phantom_case(pipeline::make_phantom_case_spec(options, 0));
}

// Value of `volume` at the voxel whose centre is the physical point `point`; fails the test
// unless that point is a voxel centre (to 1e-4 voxel).
inline float value_at_point(const core::Volume& volume, const core::Vec3& point) {
  const auto index = volume.geometry.physical_to_index(point);
  core::Index3 voxel{};
  for (int c = 0; c < 3; ++c) {
    voxel[c] = std::llround(index[c]);
    if (std::abs(index[c] - static_cast<double>(voxel[c])) > 1e-4 || voxel[c] < 0 ||
        voxel[c] >= volume.geometry.size[c]) {
      ADD_FAILURE() << "point " << core::to_string(point) << " is not a voxel centre: index "
                    << core::to_string(index);
      return -1;
    }
  }
  return volume.at(voxel[0], voxel[1], voxel[2]);
}

// preprocess, infer (mode as given), restore.
inline core::Volume segment_volume(models::Model& model, const core::Volume& input,
                                   const models::RunConfig& run, const std::string& mode) {
  const engine::Context ctx(1);
  const auto prepared = pipeline::preprocess(input, run);
  pipeline::InferenceOptions options;
  options.mode = mode;
  const auto inferred = pipeline::infer_labels(model, ctx, prepared.image, options);
  return pipeline::restore_labels(inferred.labels, prepared.record);
}

}  // namespace cajal::testing
