#include "pipeline/train_metrics.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/error.h"
#include "engine/train/data.h"

namespace cajal::pipeline {

std::vector<std::int64_t> argmax_channels(const engine::Tensor& logits) {
  const std::int64_t n = logits.dim(0);
  const std::int64_t c = logits.dim(1);
  const std::int64_t space = logits.size() / (n * c);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n * space));
  const float* v = logits.data();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t p = 0; p < space; ++p) {
      std::int64_t best = 0;
      for (std::int64_t k = 1; k < c; ++k) {
        if (v[(i * c + k) * space + p] > v[(i * c + best) * space + p]) {
          best = k;
        }
      }
      labels[static_cast<std::size_t>(i * space + p)] = best;
    }
  }
  return labels;
}

double evaluate_samples(engine::Net net, const engine::WeightMap& weights, const SampleSet& samples,
                        const std::vector<std::int64_t>& indices, std::int64_t batch_size,
                        const engine::Context& ctx, bool segmentation) {
  if (indices.empty()) {
    throw Error("evaluation samples", "at least one", "none (raise validation_fraction)");
  }
  net.load_weights(weights);
  engine::Dims dims = samples.image_dims();
  dims.insert(dims.begin(), batch_size);
  const std::string input = net.inputs().at(0);
  const std::string output = net.outputs().at(0);
  net.prepare(ctx, {{input, dims}});
  std::int64_t correct = 0;
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> overlap_and_sum;  // per label
  for (std::size_t first = 0; first < indices.size();
       first += static_cast<std::size_t>(batch_size)) {
    const std::size_t real = std::min(indices.size() - first, static_cast<std::size_t>(batch_size));
    std::vector<Sample> batch;
    for (std::size_t j = 0; j < static_cast<std::size_t>(batch_size); ++j) {
      batch.push_back(samples.get(indices[first + std::min(j, real - 1)]));
    }
    std::vector<const engine::Tensor*> images;
    for (const auto& s : batch) {
      images.push_back(&s.image);
    }
    const auto outputs = net.forward({{input, engine::train::stack_batch(images)}});
    const auto predicted = argmax_channels(outputs.at(output));
    const std::size_t per_sample = predicted.size() / static_cast<std::size_t>(batch_size);
    for (std::size_t j = 0; j < real; ++j) {
      const auto truth = batch[j].target.values();
      for (std::size_t p = 0; p < per_sample; ++p) {
        const auto t = static_cast<std::int64_t>(truth[p]);
        const std::int64_t y = predicted[j * per_sample + p];
        if (!segmentation) {
          correct += (t == y) ? 1 : 0;
          continue;
        }
        if (t == y && t > 0) {
          overlap_and_sum[t].first += 2;
        }
        if (t > 0) {
          ++overlap_and_sum[t].second;
        }
        if (y > 0) {
          ++overlap_and_sum[y].second;
        }
      }
    }
  }
  if (!segmentation) {
    return static_cast<double>(correct) / static_cast<double>(indices.size());
  }
  double sum = 0.0;
  for (const auto& [label, counts] : overlap_and_sum) {
    sum += static_cast<double>(counts.first) / static_cast<double>(counts.second);
  }
  return overlap_and_sum.empty() ? 1.0 : sum / static_cast<double>(overlap_and_sum.size());
}

}  // namespace cajal::pipeline
