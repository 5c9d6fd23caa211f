#include "pipeline/inference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "pipeline/inference_detail.h"

namespace cajal::pipeline {
namespace {

using detail::Block;
using detail::Extent;

constexpr std::int64_t kFloat = sizeof(float);

Extent round_up(const Extent& size, const Extent& multiple) {
  Extent result{};
  for (std::size_t a = 0; a < 3; ++a) {
    result[a] = (size[a] + multiple[a] - 1) / multiple[a] * multiple[a];
  }
  return result;
}

float minimum(const std::vector<float>& values) {
  return values.empty() ? 0.0f : *std::min_element(values.begin(), values.end());
}

// Whole and slab modes: the network over slabs of `padded` along D, cores of `core` planes from
// 0 with `halo` planes either side; labels of the image's voxels (the first `image` of each axis).
// `padded` is freed once the last slab is read from it.
std::int64_t run_slabs(detail::Session& s, Block padded, const Extent& image, std::int64_t core,
                       std::int64_t halo, std::vector<std::uint8_t>& labels) {
  std::int64_t passes = 0;
  Extent prepared{0, 0, 0};
  std::vector<float> sum;
  for (std::int64_t begin = 0; begin < image[0]; begin += core) {
    const std::int64_t end = std::min(begin + core, padded.size[0]);
    const std::int64_t first = std::max<std::int64_t>(0, begin - halo);
    const std::int64_t last = std::min(padded.size[0], end + halo);
    const Extent box{last - first, padded.size[1], padded.size[2]};
    if (box != prepared) {
      detail::prepare_and_measure(s.model, s.ctx, 1, box);
      prepared = box;
    }
    const std::int64_t voxels = box[0] * box[1] * box[2];
    engine::Tensor input({1, 1, box[0], box[1], box[2]});
    // Without TTA the probabilities are read straight from the network's output: the summed
    // buffer (as large as that output) would hold 0 + 1 * p, the same values.
    const bool summed = s.flips.size() > 1;
    sum.assign(summed ? static_cast<std::size_t>(s.channels * voxels) : 0, 0.0f);
    engine::Tensor out;
    for (const auto& flip : s.flips) {
      out = engine::Tensor();
      detail::read_box(padded, {first, 0, 0}, box, flip, input.data());
      if (end >= image[0] && flip == s.flips.back()) {
        std::vector<float>().swap(padded.values);
      }
      auto outputs = s.model.net().forward({{s.model.net().inputs().front(), input}});
      out = std::move(outputs.at(s.model.net().outputs().front()));
      outputs.clear();
      if (summed) {
        detail::to_probabilities(out.data(), s.channels, voxels, s.ends_in_probabilities);
      }
      detail::flip_channels(out.data(), s.channels, box, flip);
      const float share = 1.0f / static_cast<float>(s.flips.size());
      for (std::int64_t v = 0; summed && v < s.channels * voxels; ++v) {
        sum[static_cast<std::size_t>(v)] += share * out.data()[v];
      }
      ++passes;
    }
    // One pass without TTA: the label is the argmax of the logits (softmax keeps their order;
    // a single sigmoid output is above 0.5 where its logit is above 0), no exponentials needed.
    const bool logits = !summed && !s.ends_in_probabilities;
    const float* scores = summed ? sum.data() : out.data();
    const std::int64_t rows = (std::min(end, image[0]) - begin) * image[1];
#pragma omp parallel for num_threads(s.ctx.threads()) schedule(static)
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t d = begin + row / image[1];
      const std::int64_t h = row % image[1];
      const float* row_scores = scores + ((d - first) * box[1] + h) * box[2];
      std::uint8_t* row_labels = labels.data() + (d * image[1] + h) * image[2];
      if (s.channels > 1) {
        detail::argmax_row(row_scores, s.channels, voxels, image[2], row_labels);
        continue;
      }
      for (std::int64_t w = 0; w < image[2]; ++w) {
        row_labels[w] = logits ? (row_scores[w] > 0.0f ? 1 : 0)
                               : detail::argmax(row_scores + w, s.channels, voxels);
      }
    }
  }
  return passes;
}

// Bytes of a forward pass over [1, 1, depth, H, W], extrapolated linearly from two small depths
// (exact for a fully convolutional network at depths aligned to its stride).
struct DepthCost {
  std::int64_t at_a = 0, at_b = 0, a = 0, b = 0;
  std::int64_t operator()(std::int64_t depth) const {
    return at_a + (at_b - at_a) * (depth - a) / (b - a);
  }
};

}  // namespace

void check_tta(const models::RunConfig& run, bool tta) {
  if (tta && run.mirror_axes.empty()) {
    throw Error("--tta (mirroring test-time augmentation)",
                "a model whose run configuration lists mirror_axes, the axes it was trained to "
                "see mirrored",
                "a model with none: mirrored, the network would see anatomy it never saw (left "
                "and right organs swapped); run without --tta");
  }
}

InferenceResult infer_labels(models::Model& model, const engine::Context& ctx,
                             const core::Volume& image, const InferenceOptions& options) {
  const auto& run = model.spec().run;
  if (run.task != "segmentation" || run.spatial_dims != 3 || run.input_channels != 1) {
    throw Error("model for segmentation", "a 3D segmentation model of one input channel",
                run.task + ", " + std::to_string(run.spatial_dims) + "D, " +
                    std::to_string(run.input_channels) + " channel(s)");
  }
  if (!(options.overlap >= 0 && options.overlap < 1)) {
    throw Error("overlap", "a number in [0, 1)", std::to_string(options.overlap));
  }
  const std::vector<std::string> modes{"auto", "window", "slab", "whole"};
  if (std::find(modes.begin(), modes.end(), options.mode) == modes.end()) {
    throw Error("inference mode", "auto, window, slab or whole", "'" + options.mode + "'");
  }
  check_tta(run, options.tta);
  // mirror_axes name the grid's x, y, z; the tensor's axes are D (z), H (y), W (x).
  std::array<bool, 3> mirror{};
  for (const std::string& axis : run.mirror_axes) {
    mirror[axis == "z" ? 0 : axis == "y" ? 1 : 2] = true;
  }
  const auto& g = image.geometry;
  const Extent size{g.size[2], g.size[1], g.size[0]};
  Block block{size, image.pixels};
  const float pad_value = minimum(image.pixels);
  const auto locality = analyse_locality(model.spec());
  const auto last_type = model.spec().layers.back().type;
  detail::Session session{
      model, ctx, 0,
      last_type == engine::LayerType::softmax || last_type == engine::LayerType::sigmoid,
      detail::flip_set(options.tta, mirror)};
  // The output channels, from a prepare at the smallest aligned extent.
  const Extent patch = run.patch_size.empty()
                           ? Extent{0, 0, 0}
                           : Extent{run.patch_size[0], run.patch_size[1], run.patch_size[2]};
  if (!locality.local && run.patch_size.empty()) {
    throw Error("model run configuration: patch_size", "a patch size (the network is not local)",
                "none");
  }
  const Extent smallest = locality.local ? locality.total_stride : patch;
  detail::prepare_and_measure(model, ctx, 1, smallest);
  session.channels = model.net().blob_dims(model.net().outputs().front()).at(1);
  const auto expected_channels = run.labels.size() == 2 && session.channels == 1
                                     ? 1
                                     : static_cast<std::int64_t>(run.labels.size());
  if (session.channels > 255 || (!run.labels.empty() && session.channels != expected_channels)) {
    throw Error("model output channels",
                "one per label (" + std::to_string(run.labels.size()) + ", at most 255)",
                std::to_string(session.channels));
  }

  InferenceResult result;
  auto& report = result.report;
  report.details["locality"] = to_json(locality);
  report.details["tta_flips"] = session.flips.size();
  const std::int64_t voxels = g.voxel_count();
  // The caller's, the image and the labels (one byte each until inference ends).
  const std::int64_t held = options.held_bytes + voxels * kFloat + voxels;
  report.details["held_bytes"] = held;
  std::vector<std::uint8_t> labels(static_cast<std::size_t>(voxels), 0);

  std::string mode = options.mode;
  std::string why = "asked for";
  if ((mode == "slab" || mode == "whole") && !locality.local) {
    throw Error("inference mode '" + mode + "'", "a network of local layers only", locality.reason);
  }
  // One pass over the whole volume or a few slabs: each large activation is freed as soon as it is
  // dead. Windows run the network many times at one shape: every buffer is kept between them.
  constexpr std::int64_t kReleaseBytes = std::int64_t{16} << 20;
  if (locality.local && mode != "window") {
    model.net().set_release_bytes(kReleaseBytes);
    const Extent stride = locality.total_stride;
    const Extent padded_size = round_up(size, stride);
    const std::int64_t plane = padded_size[1] * padded_size[2];
    const std::int64_t halo =
        (locality.receptive_radius[0] + stride[0] - 1) / stride[0] * stride[0];
    const std::int64_t fixed = held + padded_size[0] * plane * kFloat;
    // With TTA, the summed probabilities of a slab (or the whole padded image) come on top.
    const std::int64_t sum_per_plane =
        session.flips.size() > 1 ? session.channels * plane * kFloat : 0;
    const auto slab_bytes = [&](std::int64_t depth) {
      return fixed +
             detail::prepare_and_measure(model, ctx, 1, {depth, padded_size[1], padded_size[2]}) +
             sum_per_plane * depth;
    };
    const std::int64_t whole_bytes = slab_bytes(padded_size[0]);
    report.details["whole_bytes_planned"] = whole_bytes;
    std::int64_t core = padded_size[0];
    if (mode == "auto") {
      mode = whole_bytes <= options.memory_limit_bytes ? "whole" : "slab";
      why = mode == "whole" ? "whole volume fits the memory limit"
                            : "whole volume exceeds the memory limit";
    }
    if (mode == "slab") {
      // A first guess from a forward pass's bytes at two small depths (linear for a fully
      // convolutional network at depths aligned to its stride), then checked at the slab's depth.
      DepthCost cost{slab_bytes(stride[0]), slab_bytes(2 * stride[0]), stride[0], 2 * stride[0]};
      const std::int64_t per_plane =
          std::max<std::int64_t>((cost.at_b - cost.at_a) / (cost.b - cost.a), 1);
      const auto slab_depth = [&](std::int64_t c) {
        return std::min(c + 2 * halo, padded_size[0]);
      };
      if (options.slab_core_depth > 0) {
        core = round_up({options.slab_core_depth, 1, 1}, {stride[0], 1, 1})[0];
      } else {
        core =
            ((options.memory_limit_bytes - cost(0)) / per_plane - 2 * halo) / stride[0] * stride[0];
        core = std::min(core, padded_size[0]);
        while (core >= stride[0] && slab_bytes(slab_depth(core)) > options.memory_limit_bytes) {
          core -= stride[0];
        }
      }
      core = std::min(core, padded_size[0]);
      if (core < stride[0] && options.mode == "auto") {
        mode = "window";
        why = "no slab of the network's total stride fits the memory limit";
      } else {
        core = std::max(core, stride[0]);
        report.details["slab_core_depth"] = core;
        report.details["slab_halo"] = halo;
        report.peak_bytes_planned = slab_bytes(slab_depth(core));
      }
    } else {
      report.peak_bytes_planned = whole_bytes;
    }
    if (mode != "window") {
      Block padded = detail::pad_block(block, padded_size, {0, 0, 0}, pad_value);
      std::vector<float>().swap(block.values);
      report.windows =
          run_slabs(session, std::move(padded), size, core, mode == "whole" ? 0 : halo, labels);
    }
  } else if (mode == "auto") {
    why = "the network is not local: " + locality.reason;
    mode = "window";
  }
  if (mode == "window") {
    if (patch[0] == 0) {
      throw Error("inference mode 'window'", "a patch_size in the run configuration", "none");
    }
    model.net().set_release_bytes(std::numeric_limits<std::int64_t>::max());
    report.windows =
        detail::run_windows(session, std::move(block), pad_value, options, held, report, labels);
  }
  // The network's buffers were sized for the whole image (or its slabs or windows): prepared
  // again at the smallest extent, they are given back before postprocessing and writing.
  detail::prepare_and_measure(model, ctx, 1, smallest);
  report.mode = mode;
  report.details["why"] = why;
  result.labels =
      core::Volume{g, core::PixelType::uint8, std::vector<float>(labels.begin(), labels.end())};
  return result;
}

std::vector<std::int64_t> window_starts(std::int64_t size, std::int64_t patch, double overlap) {
  CAJAL_CHECK(size >= patch && patch > 0) << "window of " << patch << " over " << size;
  const double step = static_cast<double>(patch) * (1.0 - overlap);
  const auto steps =
      static_cast<std::int64_t>(std::ceil(static_cast<double>(size - patch) / step - 1e-9)) + 1;
  std::vector<std::int64_t> starts;
  for (std::int64_t s = 0; s < steps; ++s) {
    starts.push_back(steps == 1 ? 0
                                : std::llround(static_cast<double>(s * (size - patch)) /
                                               static_cast<double>(steps - 1)));
  }
  return starts;
}

}  // namespace cajal::pipeline
