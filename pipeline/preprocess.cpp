#include "pipeline/preprocess.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "pipeline/postprocess.h"
#include "pipeline/resample.h"

namespace cajal::pipeline {
namespace {

using core::copy_box;
using core::Index3;

// The sub-grid [begin, begin + size) of `grid`.
core::Geometry sub_grid(const core::Geometry& grid, const Index3& begin, const Index3& size) {
  core::Geometry sub = grid;
  sub.size = size;
  sub.origin = grid.index_to_physical({static_cast<double>(begin[0]), static_cast<double>(begin[1]),
                                       static_cast<double>(begin[2])});
  return sub;
}

// The crop of `volume` for `crop`; none when nothing is found or the box is the whole volume.
// The body's largest component is found a row of mask at a time, without a mask or component id
// per voxel (the input grid is the largest the pipeline sees).
std::optional<CropStep> plan_crop(const core::Volume& volume, const models::Crop& crop) {
  const auto& g = volume.geometry;
  Index3 lo{g.size};
  Index3 hi{-1, -1, -1};
  if (crop.kind == "body") {
    const std::optional<ComponentBox> body = largest_component_box_above(
        volume.pixels, static_cast<float>(crop.threshold), g.size, Connectivity::full26);
    if (!body) {
      return std::nullopt;
    }
    lo = body->low;
    hi = body->high;
  } else {
    std::size_t v = 0;
    for (std::int64_t k = 0; k < g.size[2]; ++k) {
      for (std::int64_t j = 0; j < g.size[1]; ++j) {
        for (std::int64_t i = 0; i < g.size[0]; ++i, ++v) {
          if (volume.pixels[v] != 0.0f) {
            const Index3 index{i, j, k};
            for (int c = 0; c < 3; ++c) {
              lo[c] = std::min(lo[c], index[c]);
              hi[c] = std::max(hi[c], index[c]);
            }
          }
        }
      }
    }
  }
  if (hi[0] < 0) {
    return std::nullopt;
  }
  CropStep step;
  step.kind = crop.kind;
  step.before = g;
  Index3 size{};
  for (int c = 0; c < 3; ++c) {
    const auto margin = static_cast<std::int64_t>(std::ceil(crop.margin_mm / g.spacing[c] - 1e-9));
    step.begin[c] = std::max<std::int64_t>(0, lo[c] - margin);
    step.end[c] = std::min(g.size[c], hi[c] + 1 + margin);
    size[c] = step.end[c] - step.begin[c];
  }
  if (size == g.size) {
    return std::nullopt;
  }
  step.after = sub_grid(g, step.begin, size);
  return step;
}

core::Volume apply_crop(const core::Volume& volume, const CropStep& step) {
  core::Volume result = core::make_volume(step.after, volume.pixel_type);
  copy_box(volume.pixels, volume.geometry.size, step.begin, result.pixels, step.after.size,
           {0, 0, 0}, step.after.size);
  return result;
}

// The value at fraction q (0..1) of the sorted values, linearly interpolated (numpy's default).
double percentile(std::vector<float> values, double q) {
  const double position = q * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lower),
                   values.end());
  const double a = values[lower];
  if (lower + 1 >= values.size()) {
    return a;
  }
  const double b =
      *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(lower) + 1, values.end());
  return a + (position - static_cast<double>(lower)) * (b - a);
}

void set_mean_std(const std::vector<float>& values, NormalizeStep& step) {
  double sum = 0;
  for (const float x : values) {
    sum += x;
  }
  step.mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (const float x : values) {
    squares += (x - step.mean) * (x - step.mean);
  }
  const double std = std::sqrt(squares / static_cast<double>(values.size()));
  step.std = std > 1e-8 ? std : 1.0;
}

// The CT window's step: fixed clip and scale, whatever the values.
NormalizeStep ct_normalization(const models::Normalization& n) {
  NormalizeStep step;
  step.kind = n.kind;
  step.clipped = true;
  step.clip_min = n.clip_min;
  step.clip_max = n.clip_max;
  step.mean = n.mean;
  step.std = n.std;
  return step;
}

// What `step` does to each value.
ValueMap value_map(const NormalizeStep& step) {
  return {step.clipped, static_cast<float>(step.clip_min), static_cast<float>(step.clip_max),
          step.mean, step.std};
}

NormalizeStep normalize(core::Volume& volume, const models::Normalization& n) {
  auto& values = volume.pixels;
  NormalizeStep step = n.kind == "ct" ? ct_normalization(n) : NormalizeStep{};
  if (n.kind != "ct") {
    step.kind = n.kind;
    if (n.kind == "percentile") {
      // Clipped before the mean and deviation are taken (value_map's clip is then a no-op).
      step.clipped = true;
      step.clip_min = percentile(values, n.lower_percentile / 100.0);
      step.clip_max = percentile(values, n.upper_percentile / 100.0);
      for (float& x : values) {
        x = std::clamp(x, static_cast<float>(step.clip_min), static_cast<float>(step.clip_max));
      }
    }
    set_mean_std(values, step);
  }
  const ValueMap map = value_map(step);
  for (float& x : values) {
    x = map(x);
  }
  volume.pixel_type = core::PixelType::float32;
  return step;
}

std::optional<PadStep> plan_pad(const core::Volume& volume, const core::Index3& minimum) {
  const auto& g = volume.geometry;
  PadStep step;
  step.before = g;
  Index3 size{};
  bool any = false;
  for (int c = 0; c < 3; ++c) {
    const auto missing = std::max<std::int64_t>(0, minimum[c] - g.size[c]);
    step.lower[c] = missing / 2;
    step.upper[c] = missing - missing / 2;
    size[c] = g.size[c] + missing;
    any = any || missing > 0;
  }
  if (!any) {
    return std::nullopt;
  }
  step.after = sub_grid(g, {-step.lower[0], -step.lower[1], -step.lower[2]}, size);
  step.value = *std::min_element(volume.pixels.begin(), volume.pixels.end());
  return step;
}

core::Volume apply_pad(const core::Volume& volume, const PadStep& step) {
  core::Volume result = core::make_volume(step.after, volume.pixel_type, step.value);
  copy_box(volume.pixels, step.before.size, {0, 0, 0}, result.pixels, step.after.size, step.lower,
           step.before.size);
  return result;
}

}  // namespace

PreprocessedImage preprocess(const core::Volume& input, const models::RunConfig& run) {
  core::validate_geometry(input.geometry, "input volume");
  if (run.spatial_dims != 3 || run.input_channels != 1) {
    throw Error("model run configuration", "a 3D model of one input channel",
                std::to_string(run.spatial_dims) + "D, " + std::to_string(run.input_channels) +
                    " channel(s)");
  }
  // Each step reads the previous one's volume (the input itself at first, never copied whole)
  // and the previous volume is freed as soon as the next exists.
  PreprocessedImage result{{}, {input.geometry, input.geometry, {}}};
  const core::Volume* current = &input;
  const auto replace = [&](core::Volume next) {
    result.image = std::move(next);
    current = &result.image;
  };
  auto& steps = result.record.steps;
  if (!run.orientation.empty()) {
    auto step = plan_reorientation(current->geometry, run.orientation);
    if (step.source_axis != std::array<int, 3>{0, 1, 2} || step.flip != std::array<bool, 3>{}) {
      replace(apply_reorientation(*current, step));
      steps.emplace_back(std::move(step));
    }
  }
  std::optional<CropStep> crop;
  if (run.crop.kind != "none") {
    crop = plan_crop(*current, run.crop);
  }
  // The grid to resample from (the crop's, if any) and to, if the spacing differs from the target.
  const core::Geometry cropped = crop ? crop->after : current->geometry;
  std::optional<ResampleStep> resample;
  if (!run.target_spacing.empty()) {
    // target_spacing is (D, H, W): the voxel axes (k, j, i).
    const core::Vec3 target{run.target_spacing[2], run.target_spacing[1], run.target_spacing[0]};
    bool differs = false;
    for (int c = 0; c < 3; ++c) {
      differs = differs || std::abs(cropped.spacing[c] - target[c]) > 1e-6 * target[c];
    }
    if (differs) {
      resample = ResampleStep{cropped, resampled_grid(cropped, target)};
    }
  }
  const std::string& norm = run.normalization.kind;
  if (resample && (norm == "ct" || norm == "none")) {
    // A normalisation that does not look at the values (the CT window) is applied as the
    // resampling reads them, from the uncropped volume: the same pixels as cropping, normalising
    // and resampling one after the other, without the cropped and normalised copies.
    const core::Index3 begin = crop ? crop->begin : core::Index3{0, 0, 0};
    if (crop) {
      steps.emplace_back(std::move(*crop));
    }
    ValueMap map;
    if (norm == "ct") {
      NormalizeStep step = ct_normalization(run.normalization);
      map = value_map(step);
      steps.emplace_back(std::move(step));
    }
    result.image = resample_linear(*current, begin, cropped, resample->after, map);
    steps.emplace_back(std::move(*resample));
  } else {
    if (crop) {
      replace(apply_crop(*current, *crop));
      steps.emplace_back(std::move(*crop));
    }
    if (current == &input) {
      result.image = input;  // nothing changed the grid: the image to normalise is a copy
    }
    if (norm != "none") {
      steps.emplace_back(normalize(result.image, run.normalization));
    }
    if (resample) {
      result.image = resample_linear(result.image, resample->after);
      steps.emplace_back(std::move(*resample));
    }
  }
  core::Volume& image = result.image;
  image.pixel_type = core::PixelType::float32;
  if (!run.patch_size.empty()) {
    const Index3 patch{run.patch_size[2], run.patch_size[1], run.patch_size[0]};
    if (auto step = plan_pad(image, patch)) {
      image = apply_pad(image, *step);
      steps.emplace_back(std::move(*step));
    }
  }
  result.record.output = image.geometry;
  return result;
}

core::Volume preprocess_labels(const core::Volume& labels, const PreprocessRecord& record) {
  if (labels.geometry.size != record.input.size ||
      !core::same_grid(labels.geometry, record.input)) {
    throw Error("label map", "the image's grid (size, spacing, origin, direction)", "another grid");
  }
  core::Volume current = labels;
  for (const auto& step : record.steps) {
    if (const auto* reorient = std::get_if<ReorientStep>(&step)) {
      current = apply_reorientation(current, *reorient);
    } else if (const auto* crop = std::get_if<CropStep>(&step)) {
      current = apply_crop(current, *crop);
    } else if (const auto* resample = std::get_if<ResampleStep>(&step)) {
      current = resample_nearest(current, resample->after);
    } else if (const auto* pad = std::get_if<PadStep>(&step)) {
      PadStep zero = *pad;
      zero.value = 0.0f;
      current = apply_pad(current, zero);
    }
  }
  CAJAL_CHECK(current.geometry.size == record.output.size &&
              same_grid(current.geometry, record.output))
      << "preprocessed labels are not on the preprocessed grid";
  current.geometry = record.output;
  return current;
}

core::Volume restore_labels(const core::Volume& labels, const PreprocessRecord& record) {
  if (labels.geometry.size != record.output.size ||
      !core::same_grid(labels.geometry, record.output)) {
    throw Error("label map to restore", "the preprocessed grid (size and placement)",
                "another grid");
  }
  core::Volume current = labels;
  for (auto step = record.steps.rbegin(); step != record.steps.rend(); ++step) {
    if (const auto* pad = std::get_if<PadStep>(&*step)) {
      core::Volume inner = core::make_volume(pad->before, labels.pixel_type);
      copy_box(current.pixels, pad->after.size, pad->lower, inner.pixels, pad->before.size,
               {0, 0, 0}, pad->before.size);
      current = std::move(inner);
    } else if (const auto* resample = std::get_if<ResampleStep>(&*step)) {
      auto next = std::next(step);  // the crop before it, normalisation (nothing to undo) between
      while (next != record.steps.rend() && std::holds_alternative<NormalizeStep>(*next)) {
        ++next;
      }
      const auto* crop = next != record.steps.rend() ? std::get_if<CropStep>(&*next) : nullptr;
      if (crop != nullptr && resample->before.size == crop->after.size &&
          same_grid(resample->before, crop->after)) {
        // Resampled straight into the uncropped grid: no cropped copy to fill and move.
        core::Volume outer = core::make_volume(crop->before, labels.pixel_type);
        resample_labels_linear_into(current, resample->before, outer.pixels, crop->before.size,
                                    crop->begin);
        current = std::move(outer);
        step = next;
      } else {
        current = resample_labels_linear(current, resample->before);
      }
    } else if (const auto* crop = std::get_if<CropStep>(&*step)) {
      core::Volume outer = core::make_volume(crop->before, labels.pixel_type);
      copy_box(current.pixels, crop->after.size, {0, 0, 0}, outer.pixels, crop->before.size,
               crop->begin, crop->after.size);
      current = std::move(outer);
    } else if (const auto* reorient = std::get_if<ReorientStep>(&*step)) {
      current = undo_reorientation(current, *reorient);
    }
  }
  CAJAL_CHECK(current.geometry.size == record.input.size &&
              same_grid(current.geometry, record.input))
      << "restored labels are not on the input grid";
  current.geometry = record.input;
  // Restoring only copies labels, adds background and picks among neighbours: no label above
  // the largest one given, which is looked for in the preprocessed (smaller) map.
  const float top =
      labels.pixels.empty() ? 0.0f : *std::max_element(labels.pixels.begin(), labels.pixels.end());
  current.pixel_type = top > 255.0f ? core::PixelType::uint16 : core::PixelType::uint8;
  return current;
}

}  // namespace cajal::pipeline
