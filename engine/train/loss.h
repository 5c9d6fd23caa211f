// Training losses on a network's logits [N, C, spatial...] (issue 4). Each returns the scalar loss
// and its gradient with respect to the logits, reduced as PyTorch reduces by default ('mean').
//
// Targets:
// - class indices (cross-entropy, Dice, Dice + CE): a tensor of label values, dims
//   [N, spatial...] or [N, 1, spatial...]; each value an integer in [0, C) or the ignore index.
// - probabilities (BCE, MSE): a tensor of the logits' dims.
//
// Sums are accumulated in double; softmax uses the log-sum-exp form, so large logits are safe.
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "engine/tensor.h"

namespace cajal::engine::train {

struct LossOutput {
  double value = 0.0;
  Tensor diff_logits;  // [N, C, spatial...], d value / d logits
};

// torch.nn.functional.cross_entropy(logits, target, weight, ignore_index): per-position loss
// w[y] * (logsumexp(x) - x[y]); the mean divides by the sum of w[y] over non-ignored positions.
// When every position is ignored the loss is 0 with a zero gradient (PyTorch returns NaN).
struct CrossEntropyConfig {
  std::vector<float> class_weights;  // empty: all 1; else C values
  std::int64_t ignore_index = -100;  // PyTorch's default
};

// torch.nn.functional.binary_cross_entropy_with_logits(logits, target, weight) with weight of
// dims [1, C, 1, ...]: mean over all elements of w[c] * (max(x,0) - x t + log(1 + exp(-|x|))).
struct BinaryCrossEntropyConfig {
  std::vector<float> class_weights;  // empty: all 1; else C values, one per channel
};

// nnU-Net's soft Dice (SoftDiceLoss with softmax): p = softmax(logits) over C, y = one-hot target,
// m = 0 at ignored positions and 1 elsewhere. Per class c, summing over the batch and space
// (batch_dice) or over space only (one Dice per sample and class):
//   dice_c = (2 sum(p_c y_c m) + smooth) / max(sum(p_c m) + sum(y_c m) + smooth, 1e-8)
//   loss   = 1 - mean of dice_c over the kept classes (and samples)
// nnU-Net returns -mean(dice); the gradient is the same. Background is class 0.
struct SoftDiceConfig {
  double smooth = 1e-5;
  bool batch_dice = true;
  bool include_background = false;  // nnU-Net's do_bg = False
  std::int64_t ignore_index = -100;
};

// nnU-Net's DC_and_CE_loss: weight_ce * cross-entropy + weight_dice * soft Dice. Label values are
// checked against the cross-entropy's ignore index; the softmax is computed once when both ignore
// indices agree.
struct DiceCrossEntropyConfig {
  CrossEntropyConfig cross_entropy;
  SoftDiceConfig dice;
  double weight_cross_entropy = 1.0;
  double weight_dice = 1.0;
};

// torch.nn.functional.mse_loss: mean over all elements of (x - t)^2, on the raw outputs.
struct MeanSquaredErrorConfig {};

using LossConfig = std::variant<CrossEntropyConfig, BinaryCrossEntropyConfig, SoftDiceConfig,
                                DiceCrossEntropyConfig, MeanSquaredErrorConfig>;

// Each throws cajal::Error when the target's dims, a label value or the class weights do not fit.
LossOutput cross_entropy(const Tensor& logits, const Tensor& target,
                         const CrossEntropyConfig& config);
LossOutput binary_cross_entropy(const Tensor& logits, const Tensor& target,
                                const BinaryCrossEntropyConfig& config);
LossOutput soft_dice(const Tensor& logits, const Tensor& target, const SoftDiceConfig& config);
LossOutput dice_cross_entropy(const Tensor& logits, const Tensor& target,
                              const DiceCrossEntropyConfig& config);
LossOutput mean_squared_error(const Tensor& logits, const Tensor& target,
                              const MeanSquaredErrorConfig& config = {});

// Dispatches on the config's type.
LossOutput compute_loss(const LossConfig& config, const Tensor& logits, const Tensor& target);

}  // namespace cajal::engine::train
