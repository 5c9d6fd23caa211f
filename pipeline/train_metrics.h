// Validation and test metrics of `cajal train`: accuracy for classifiers, mean Dice over the
// foreground labels for segmentation networks, computed with the inference engine (batch norm
// folded, post-ops fused) on the weights being trained.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/context.h"
#include "engine/net.h"
#include "pipeline/train_data.h"

namespace cajal::pipeline {

// Runs `net` (not yet loaded) with `weights` on samples `indices` in batches of `batch_size`
// (the last one padded with repeats, whose outputs are left out) and returns the accuracy, or
// the mean over foreground labels of Dice = 2|P∩T| / (|P| + |T|) counted over all the samples
// (labels absent from both prediction and truth are left out). Throws if `indices` is empty.
double evaluate_samples(engine::Net net, const engine::WeightMap& weights, const SampleSet& samples,
                        const std::vector<std::int64_t>& indices, std::int64_t batch_size,
                        const engine::Context& ctx, bool segmentation);

// The predicted label per position: argmax over channels of logits [N, C, spatial...], the first
// on ties; [N, spatial...] flattened.
std::vector<std::int64_t> argmax_channels(const engine::Tensor& logits);

}  // namespace cajal::pipeline
