#include "engine/train/loss.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "engine/train/exp_log.h"

namespace cajal::engine::train {
namespace {

// Logits [N, C, S...] seen as N x C x S.
struct Layout {
  std::int64_t n = 0;
  std::int64_t c = 0;
  std::int64_t s = 0;
};

Layout layout_of(const Tensor& logits, const char* loss) {
  if (logits.rank() < 2 || logits.dim(0) < 1 || logits.dim(1) < 1) {
    throw Error(std::string(loss) + " logits", "dims [N, C, spatial...] with N, C >= 1",
                to_string(logits.dims()));
  }
  return {logits.dim(0), logits.dim(1), logits.size() / (logits.dim(0) * logits.dim(1))};
}

// Losses over this many positions (N x S) or more compute each position's softmax and gradient
// on OpenMP's threads (the engine context's count): a position's values are computed from its
// own logits alone, and sums over positions are taken in blocks of kBlock positions of a sample,
// then block by block in order, so any split gives the same bytes (bench/train's 3D U-Net at
// 64^3: 10.4 -> 6 ms a step).
constexpr std::int64_t kParallelFrom = 16384;

constexpr std::int64_t kBlock = 512;

// Label per position as a class index, or -1 where ignored.
std::vector<std::int64_t> class_labels(const Tensor& logits, const Tensor& target,
                                       std::int64_t ignore_index, const char* loss) {
  const auto& ld = logits.dims();
  Dims without_c(ld.begin(), ld.end());
  without_c.erase(without_c.begin() + 1);
  Dims with_one = ld;
  with_one[1] = 1;
  if (target.dims() != without_c && target.dims() != with_one) {
    throw Error(std::string(loss) + " target", to_string(without_c) + " or " + to_string(with_one),
                to_string(target.dims()));
  }
  const std::int64_t classes = ld[1];
  const std::int64_t count = target.size();
  std::vector<std::int64_t> labels(static_cast<std::size_t>(count));
  const float* t = target.data();
  // On the threads; the first value that does not fit is the one named.
  std::int64_t first_bad = count;
#pragma omp parallel for schedule(static) reduction(min : first_bad) if (count >= kParallelFrom)
  for (std::int64_t i = 0; i < count; ++i) {
    const double v = t[i];
    const bool fits = v >= 0.0 && v < static_cast<double>(classes) && v == std::floor(v);
    if (v == static_cast<double>(ignore_index) || !fits) {
      labels[static_cast<std::size_t>(i)] = -1;
      if (v != static_cast<double>(ignore_index))
        first_bad = std::min(first_bad, i);
      continue;
    }
    labels[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  if (first_bad < count) {
    throw Error(std::string(loss) + " target value at position " + std::to_string(first_bad),
                "an integer in [0, " + std::to_string(classes) + ") or the ignore index " +
                    std::to_string(ignore_index),
                std::to_string(double{t[first_bad]}));
  }
  return labels;
}

std::vector<double> class_weights(const std::vector<float>& weights, std::int64_t classes,
                                  const char* loss) {
  if (weights.empty()) {
    return std::vector<double>(static_cast<std::size_t>(classes), 1.0);
  }
  if (static_cast<std::int64_t>(weights.size()) != classes) {
    throw Error(std::string(loss) + " class weights", std::to_string(classes) + " values",
                std::to_string(weights.size()));
  }
  return {weights.begin(), weights.end()};
}

// The blocks of kBlock positions (the last of a sample may be shorter): block b of the N x
// ceil(S / kBlock) covers positions [first, first + count) of sample n.
struct Block {
  std::int64_t n = 0;
  std::int64_t first = 0;
  std::int64_t count = 0;
};

std::int64_t block_count(const Layout& l) {
  return l.n * ((l.s + kBlock - 1) / kBlock);
}

Block block_at(const Layout& l, std::int64_t b) {
  const std::int64_t per_sample = (l.s + kBlock - 1) / kBlock;
  const std::int64_t first = b % per_sample * kBlock;
  return {b / per_sample, first, std::min(kBlock, l.s - first)};
}

// The softmax of a block's positions, x its sample's logits [C, S] from the block's first
// position: top[j] the largest logit of position j, e[c * count + j] = exp(x_c - top), sum[j]
// their sum over c in order, log_sum[j] = top + log(sum) (detail::exp_nonpositive and
// log_positive, the same bytes on every CPU).
struct BlockSoftmax {
  std::vector<double> top, e, sum, log_sum;

  explicit BlockSoftmax(std::int64_t classes)
      : top(kBlock), e(static_cast<std::size_t>(classes * kBlock)), sum(kBlock), log_sum(kBlock) {}

  void compute(const float* x, std::int64_t stride, std::int64_t classes, std::int64_t count) {
    const auto at = [count](std::int64_t c, std::int64_t j) {
      return static_cast<std::size_t>(c * count + j);
    };
    for (std::int64_t j = 0; j < count; ++j)
      top[static_cast<std::size_t>(j)] = x[j];
    for (std::int64_t c = 1; c < classes; ++c) {
      for (std::int64_t j = 0; j < count; ++j) {
        auto& t = top[static_cast<std::size_t>(j)];
        t = std::max(t, double{x[c * stride + j]});
      }
    }
    for (std::int64_t c = 0; c < classes; ++c) {
      for (std::int64_t j = 0; j < count; ++j)
        e[at(c, j)] = double{x[c * stride + j]} - top[static_cast<std::size_t>(j)];
    }
    detail::exp_nonpositive(e.data(), e.data(), classes * count);
    for (std::int64_t j = 0; j < count; ++j)
      sum[static_cast<std::size_t>(j)] = e[at(0, j)];
    for (std::int64_t c = 1; c < classes; ++c) {
      for (std::int64_t j = 0; j < count; ++j)
        sum[static_cast<std::size_t>(j)] += e[at(c, j)];
    }
    detail::log_positive(sum.data(), log_sum.data(), count);
    for (std::int64_t j = 0; j < count; ++j)
      log_sum[static_cast<std::size_t>(j)] += top[static_cast<std::size_t>(j)];
  }
};

// Softmax over C at every position, in double: [N, C, S].
std::vector<double> softmax(const Tensor& logits, const Layout& l) {
  std::vector<double> p(static_cast<std::size_t>(logits.size()));
#pragma omp parallel if (l.n * l.s >= kParallelFrom)
  {
    BlockSoftmax block(l.c);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < block_count(l); ++b) {
      const auto [n, first, count] = block_at(l, b);
      const std::int64_t base = n * l.c * l.s + first;
      block.compute(logits.data() + base, l.s, l.c, count);
      for (std::int64_t c = 0; c < l.c; ++c) {
        for (std::int64_t j = 0; j < count; ++j) {
          p[static_cast<std::size_t>(base + c * l.s + j)] =
              block.e[static_cast<std::size_t>(c * count + j)] /
              block.sum[static_cast<std::size_t>(j)];
        }
      }
    }
  }
  return p;
}

void require_same_dims(const Tensor& logits, const Tensor& target, const char* loss) {
  if (target.dims() != logits.dims()) {
    throw Error(std::string(loss) + " target", to_string(logits.dims()), to_string(target.dims()));
  }
}

// Class-index losses share the labels and the softmax.
struct Classes {
  Layout l;
  std::vector<std::int64_t> labels;  // [N, S], -1 where ignored
  std::vector<double> p;             // softmax, [N, C, S] (0 where ignored, for Dice + CE)
};

Classes prepare_classes(const Tensor& logits, const Tensor& target, std::int64_t ignore_index,
                        const char* loss) {
  Classes k;
  k.l = layout_of(logits, loss);
  k.labels = class_labels(logits, target, ignore_index, loss);
  k.p = softmax(logits, k.l);
  return k;
}

// Cross-entropy keeps no softmax unless `p` asks for it: each block's gradient and its sum of
// w[y] log p[y] come from one pass over its logits (on the threads), then the blocks' sums in
// order. `p` (if given, [N, C, S] zeros) gets the softmax of the unignored positions, which is all
// the Dice term of Dice + CE reads.
LossOutput cross_entropy_of(const Tensor& logits, const Layout& l,
                            const std::vector<std::int64_t>& labels,
                            const CrossEntropyConfig& config, std::vector<double>* p) {
  const auto w = class_weights(config.class_weights, l.c, "cross-entropy");
  const std::int64_t blocks = block_count(l);
  const bool parallel = l.n * l.s >= kParallelFrom;
  // Each block's sum of w[y], then theirs in order.
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const auto [n, first, count] = block_at(l, b);
    double sum = 0.0;
    for (std::int64_t j = 0; j < count; ++j) {
      const auto y = labels[static_cast<std::size_t>(n * l.s + first + j)];
      if (y >= 0)
        sum += w[static_cast<std::size_t>(y)];
    }
    partial[static_cast<std::size_t>(b)] = sum;
  }
  double weight_sum = 0.0;
  for (const double sum : partial)
    weight_sum += sum;
  LossOutput out{0.0, Tensor(logits.dims())};
  // Every position ignored, or every weight of the labels present 0: the loss is 0 with a zero
  // gradient; only the softmax asked for is computed.
  const bool weighted = weight_sum != 0.0;
  if (!weighted && p == nullptr)
    return out;
  const float* x = logits.data();
  float* g = out.diff_logits.data();
#pragma omp parallel if (parallel)
  {
    BlockSoftmax block(l.c);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const auto [n, first, count] = block_at(l, b);
      const std::int64_t base = n * l.c * l.s + first;
      const std::int64_t* y = labels.data() + n * l.s + first;
      block.compute(x + base, l.s, l.c, count);
      double sum = 0.0;
      for (std::int64_t j = 0; j < count; ++j) {
        if (y[j] >= 0) {
          const double log_p =
              double{x[base + y[j] * l.s + j]} - block.log_sum[static_cast<std::size_t>(j)];
          sum -= w[static_cast<std::size_t>(y[j])] * log_p;
        }
      }
      partial[static_cast<std::size_t>(b)] = sum;
      for (std::int64_t c = 0; c < l.c; ++c) {
        for (std::int64_t j = 0; j < count; ++j) {
          if (y[j] < 0)
            continue;
          const double pc = block.e[static_cast<std::size_t>(c * count + j)] /
                            block.sum[static_cast<std::size_t>(j)];
          // Unweighted (Dice + CE only), the gradient stays +0 and the scale is not used.
          if (weighted) {
            const double scale = w[static_cast<std::size_t>(y[j])] / weight_sum;
            g[base + c * l.s + j] = static_cast<float>(scale * (pc - (c == y[j] ? 1.0 : 0.0)));
          }
          if (p != nullptr)
            (*p)[static_cast<std::size_t>(base + c * l.s + j)] = pc;
        }
      }
    }
  }
  if (!weighted)
    return out;
  double total = 0.0;
  for (const double sum : partial)
    total += sum;
  out.value = total / weight_sum;
  return out;
}

LossOutput soft_dice_of(const Tensor& logits, const Classes& k, const SoftDiceConfig& config) {
  const auto& l = k.l;
  const auto& labels = k.labels;
  const auto& p = k.p;
  if (!config.include_background && l.c < 2) {
    throw Error("soft Dice without background", "C >= 2 classes", std::to_string(l.c));
  }
  // One Dice per (group, class): group = 0 for batch Dice, else the sample.
  const std::int64_t groups = config.batch_dice ? 1 : l.n;
  const auto cells = static_cast<std::size_t>(groups * l.c);
  std::vector<double> inter(cells, 0.0), pred(cells, 0.0), truth(cells, 0.0);
  for (std::int64_t n = 0; n < l.n; ++n) {
    const std::int64_t group = config.batch_dice ? 0 : n;
    for (std::int64_t s = 0; s < l.s; ++s) {
      const auto y = labels[static_cast<std::size_t>(n * l.s + s)];
      if (y < 0)
        continue;
      for (std::int64_t c = 0; c < l.c; ++c) {
        const auto cell = static_cast<std::size_t>(group * l.c + c);
        const double pc = p[static_cast<std::size_t>(n * l.c * l.s + c * l.s + s)];
        pred[cell] += pc;
        if (c == y) {
          inter[cell] += pc;
          truth[cell] += 1.0;
        }
      }
    }
  }
  const std::int64_t first = config.include_background ? 0 : 1;
  const double kept = static_cast<double>(groups * (l.c - first));
  // d loss / d p for each kept (group, class): -(1/kept) d dice / d p, where
  // d dice / d p = (2 y (P + Y + s) - (2 I + s)) / (P + Y + s)^2 at unignored positions.
  std::vector<double> numer(cells, 0.0), denom(cells, 1.0);
  double dice_sum = 0.0;
  for (std::int64_t gr = 0; gr < groups; ++gr) {
    for (std::int64_t c = first; c < l.c; ++c) {
      const auto cell = static_cast<std::size_t>(gr * l.c + c);
      numer[cell] = 2.0 * inter[cell] + config.smooth;
      denom[cell] = std::max(pred[cell] + truth[cell] + config.smooth, 1e-8);
      dice_sum += numer[cell] / denom[cell];
    }
  }
  LossOutput out{1.0 - dice_sum / kept, Tensor(logits.dims())};
  float* g = out.diff_logits.data();
#pragma omp parallel if (l.n * l.s >= kParallelFrom)
  {
    std::vector<double> dp(static_cast<std::size_t>(l.c));
#pragma omp for collapse(2) schedule(static)
    for (std::int64_t n = 0; n < l.n; ++n) {
      for (std::int64_t s = 0; s < l.s; ++s) {
        const std::int64_t group = config.batch_dice ? 0 : n;
        const auto y = labels[static_cast<std::size_t>(n * l.s + s)];
        if (y < 0)
          continue;
        double dot = 0.0;
        for (std::int64_t c = 0; c < l.c; ++c) {
          const auto cell = static_cast<std::size_t>(group * l.c + c);
          const double pc = p[static_cast<std::size_t>(n * l.c * l.s + c * l.s + s)];
          double d = 0.0;
          if (c >= first) {
            const double yc = c == y ? 1.0 : 0.0;
            d = -(2.0 * yc * denom[cell] - numer[cell]) / (denom[cell] * denom[cell] * kept);
          }
          dp[static_cast<std::size_t>(c)] = d;
          dot += pc * d;
        }
        for (std::int64_t c = 0; c < l.c; ++c) {
          const auto at = static_cast<std::size_t>(n * l.c * l.s + c * l.s + s);
          g[at] = static_cast<float>(p[at] * (dp[static_cast<std::size_t>(c)] - dot));
        }
      }
    }
  }
  return out;
}

}  // namespace

LossOutput cross_entropy(const Tensor& logits, const Tensor& target,
                         const CrossEntropyConfig& config) {
  const Layout l = layout_of(logits, "cross-entropy");
  return cross_entropy_of(logits, l,
                          class_labels(logits, target, config.ignore_index, "cross-entropy"),
                          config, nullptr);
}

LossOutput binary_cross_entropy(const Tensor& logits, const Tensor& target,
                                const BinaryCrossEntropyConfig& config) {
  const char* name = "binary cross-entropy";
  const auto l = layout_of(logits, name);
  require_same_dims(logits, target, name);
  const auto w = class_weights(config.class_weights, l.c, name);
  LossOutput out{0.0, Tensor(logits.dims())};
  const float* x = logits.data();
  const float* t = target.data();
  float* g = out.diff_logits.data();
  const double count = static_cast<double>(logits.size());
  double total = 0.0;
  for (std::int64_t i = 0; i < logits.size(); ++i) {
    const double wc = w[static_cast<std::size_t>((i / l.s) % l.c)];
    const double xi = x[i];
    const double ti = t[i];
    total += wc * (std::max(xi, 0.0) - xi * ti + std::log1p(std::exp(-std::abs(xi))));
    const double sigmoid =
        xi >= 0 ? 1.0 / (1.0 + std::exp(-xi)) : std::exp(xi) / (1.0 + std::exp(xi));
    g[i] = static_cast<float>(wc * (sigmoid - ti) / count);
  }
  out.value = total / count;
  return out;
}

LossOutput soft_dice(const Tensor& logits, const Tensor& target, const SoftDiceConfig& config) {
  return soft_dice_of(logits, prepare_classes(logits, target, config.ignore_index, "soft Dice"),
                      config);
}

LossOutput dice_cross_entropy(const Tensor& logits, const Tensor& target,
                              const DiceCrossEntropyConfig& config) {
  const char* name = "Dice + CE";
  Classes k{layout_of(logits, name),
            class_labels(logits, target, config.cross_entropy.ignore_index, name),
            {}};
  const bool shared = config.dice.ignore_index == config.cross_entropy.ignore_index;
  if (shared)
    k.p.assign(static_cast<std::size_t>(logits.size()), 0.0);
  auto ce = cross_entropy_of(logits, k.l, k.labels, config.cross_entropy, shared ? &k.p : nullptr);
  const auto dice =
      shared ? soft_dice_of(logits, k, config.dice) : soft_dice(logits, target, config.dice);
  float* g = ce.diff_logits.data();
  const float* gd = dice.diff_logits.data();
#pragma omp parallel for schedule(static) if (logits.size() >= kParallelFrom)
  for (std::int64_t i = 0; i < logits.size(); ++i) {
    g[i] = static_cast<float>(config.weight_cross_entropy * g[i] + config.weight_dice * gd[i]);
  }
  ce.value = config.weight_cross_entropy * ce.value + config.weight_dice * dice.value;
  return ce;
}

LossOutput mean_squared_error(const Tensor& logits, const Tensor& target,
                              const MeanSquaredErrorConfig& /*config*/) {
  const char* name = "mean squared error";
  layout_of(logits, name);
  require_same_dims(logits, target, name);
  LossOutput out{0.0, Tensor(logits.dims())};
  const float* x = logits.data();
  const float* t = target.data();
  float* g = out.diff_logits.data();
  const double count = static_cast<double>(logits.size());
  double total = 0.0;
  for (std::int64_t i = 0; i < logits.size(); ++i) {
    const double d = double{x[i]} - double{t[i]};
    total += d * d;
    g[i] = static_cast<float>(2.0 * d / count);
  }
  out.value = total / count;
  return out;
}

LossOutput compute_loss(const LossConfig& config, const Tensor& logits, const Tensor& target) {
  return std::visit(
      [&](const auto& c) -> LossOutput {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CrossEntropyConfig>) {
          return cross_entropy(logits, target, c);
        } else if constexpr (std::is_same_v<T, BinaryCrossEntropyConfig>) {
          return binary_cross_entropy(logits, target, c);
        } else if constexpr (std::is_same_v<T, SoftDiceConfig>) {
          return soft_dice(logits, target, c);
        } else if constexpr (std::is_same_v<T, DiceCrossEntropyConfig>) {
          return dice_cross_entropy(logits, target, c);
        } else {
          return mean_squared_error(logits, target, c);
        }
      },
      config);
}

}  // namespace cajal::engine::train
