// Sliding-window inference with Gaussian importance weighting, nnU-Net's, over a band of one
// patch depth: planes no later window touches are reduced to labels and dropped.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "pipeline/inference_detail.h"

namespace cajal::pipeline::detail {
namespace {

// exp(-x^2 / (2 sigma^2)) around the patch centre, sigma = patch / 8, per axis; the product is
// the importance map (1 at the centre of an odd patch).
std::vector<float> gaussian_map(const Extent& patch) {
  std::array<std::vector<double>, 3> axes;
  for (std::size_t a = 0; a < 3; ++a) {
    const double sigma = static_cast<double>(patch[a]) / 8.0;
    const double centre = (static_cast<double>(patch[a]) - 1.0) / 2.0;
    for (std::int64_t x = 0; x < patch[a]; ++x) {
      const double u = (static_cast<double>(x) - centre) / sigma;
      axes[a].push_back(std::exp(-0.5 * u * u));
    }
  }
  std::vector<float> map;
  map.reserve(static_cast<std::size_t>(patch[0] * patch[1] * patch[2]));
  for (const double gd : axes[0]) {
    for (const double gh : axes[1]) {
      for (const double gw : axes[2]) {
        map.push_back(std::max(static_cast<float>(gd * gh * gw), 1e-8f));
      }
    }
  }
  return map;
}

struct Job {
  std::int64_t h, w;
  std::array<bool, 3> flip;
};

}  // namespace

std::int64_t run_windows(Session& s, Block image, float pad_value, const InferenceOptions& options,
                         std::int64_t held, InferenceReport& report,
                         std::vector<std::uint8_t>& labels) {
  const auto& ps = s.model.spec().run.patch_size;
  const Extent patch{ps[0], ps[1], ps[2]};
  Extent size{};
  Extent lower{};
  for (std::size_t a = 0; a < 3; ++a) {
    size[a] = std::max(image.size[a], patch[a]);
    lower[a] = (size[a] - image.size[a]) / 2;
  }
  const Block padded = pad_block(image, size, lower, pad_value);
  std::vector<float>().swap(image.values);
  std::array<std::vector<std::int64_t>, 3> starts;
  for (std::size_t a = 0; a < 3; ++a) {
    starts[a] = window_starts(size[a], patch[a], options.overlap);
  }
  const auto gaussian = gaussian_map(patch);
  const std::int64_t patch_voxels = patch[0] * patch[1] * patch[2];
  const std::int64_t plane = size[1] * size[2];
  const std::int64_t band = patch[0] * plane;
  const std::int64_t band_bytes =
      (s.channels + 1) * band * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t fixed =
      held + padded.voxels() * static_cast<std::int64_t>(sizeof(float)) + band_bytes;
  const auto jobs_per_row =
      static_cast<std::int64_t>(starts[1].size() * starts[2].size() * s.flips.size());
  std::int64_t batch = std::max<std::int64_t>(1, std::min(options.max_batch, jobs_per_row));
  std::int64_t forward_bytes = prepare_and_measure(s.model, s.ctx, batch, patch);
  while (batch > 1 && fixed + forward_bytes > options.memory_limit_bytes) {
    --batch;
    forward_bytes = prepare_and_measure(s.model, s.ctx, batch, patch);
  }
  report.peak_bytes_planned = fixed + forward_bytes;
  report.details["patch_size"] = patch;
  report.details["overlap"] = options.overlap;
  report.details["batch"] = batch;
  report.details["window_grid"] = {starts[0].size(), starts[1].size(), starts[2].size()};
  report.details["padded_size"] = size;

  std::vector<float> sum(static_cast<std::size_t>(s.channels * band), 0.0f);
  std::vector<float> weight(static_cast<std::size_t>(band), 0.0f);
  std::int64_t band_first = 0;  // the padded plane that band plane 0 holds
  // Labels for padded planes [band_first, upto), then the band moves down to `upto`.
  const auto finish_planes = [&](std::int64_t upto) {
    CAJAL_CHECK(upto - band_first <= patch[0])
        << "windows leave planes " << band_first + patch[0] << " to " << upto << " uncovered";
    std::vector<float> probabilities(static_cast<std::size_t>(s.channels));
    for (std::int64_t pd = band_first; pd < upto; ++pd) {
      const std::int64_t d = pd - lower[0];
      for (std::int64_t h = 0; d >= 0 && d < image.size[0] && h < image.size[1]; ++h) {
        for (std::int64_t w = 0; w < image.size[2]; ++w) {
          const auto v = (pd - band_first) * plane + (h + lower[1]) * size[2] + w + lower[2];
          for (std::int64_t c = 0; c < s.channels; ++c) {
            probabilities[static_cast<std::size_t>(c)] =
                sum[static_cast<std::size_t>(c * band + v)] / weight[static_cast<std::size_t>(v)];
          }
          labels[static_cast<std::size_t>((d * image.size[1] + h) * image.size[2] + w)] =
              argmax(probabilities.data(), s.channels, 1);
        }
      }
    }
    const std::int64_t shift = (upto - band_first) * plane;
    for (std::int64_t c = 0; c <= s.channels; ++c) {
      auto* data = c < s.channels ? sum.data() + c * band : weight.data();
      std::copy(data + shift, data + band, data);
      std::fill(data + band - shift, data + band, 0.0f);
    }
    band_first = upto;
  };

  std::int64_t windows = 0;
  const float share = 1.0f / static_cast<float>(s.flips.size());
  const auto& net = s.model.net();
  engine::Tensor input({batch, 1, patch[0], patch[1], patch[2]});
  for (const std::int64_t z : starts[0]) {
    finish_planes(z);
    std::vector<Job> jobs;
    for (const std::int64_t y : starts[1]) {
      for (const std::int64_t x : starts[2]) {
        for (const auto& flip : s.flips) {
          jobs.push_back({y, x, flip});
        }
      }
    }
    for (std::size_t first = 0; first < jobs.size(); first += static_cast<std::size_t>(batch)) {
      const auto count = std::min(jobs.size() - first, static_cast<std::size_t>(batch));
      std::fill(input.values().begin(), input.values().end(), 0.0f);
      for (std::size_t b = 0; b < count; ++b) {
        const auto& job = jobs[first + b];
        read_box(padded, {z, job.h, job.w}, patch, job.flip,
                 input.data() + static_cast<std::int64_t>(b) * patch_voxels);
      }
      auto outputs = s.model.net().forward({{net.inputs().front(), input}});
      auto& out = outputs.at(net.outputs().front());
      for (std::size_t b = 0; b < count; ++b) {
        const auto& job = jobs[first + b];
        float* o = out.data() + static_cast<std::int64_t>(b) * s.channels * patch_voxels;
        to_probabilities(o, s.channels, patch_voxels, s.ends_in_probabilities);
        flip_channels(o, s.channels, patch, job.flip);
        std::int64_t p = 0;
        for (std::int64_t d = 0; d < patch[0]; ++d) {
          for (std::int64_t h = 0; h < patch[1]; ++h) {
            const auto row = (z - band_first + d) * plane + (job.h + h) * size[2] + job.w;
            for (std::int64_t w = 0; w < patch[2]; ++w, ++p) {
              const float g = gaussian[static_cast<std::size_t>(p)] * share;
              weight[static_cast<std::size_t>(row + w)] += g;
              for (std::int64_t c = 0; c < s.channels; ++c) {
                sum[static_cast<std::size_t>(c * band + row + w)] += g * o[c * patch_voxels + p];
              }
            }
          }
        }
        ++windows;
      }
    }
  }
  finish_planes(size[0]);
  return windows;
}

}  // namespace cajal::pipeline::detail
