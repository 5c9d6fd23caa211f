// Naive twin of batch, instance and group normalisation, forward and backward.
#include <cmath>
#include <utility>
#include <vector>

#include "engine/layers/normalization.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Normalization final : public NormalizationLayer {
 public:
  using NormalizationLayer::NormalizationLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& x = *src[0];
    std::vector<double> batch_mean;
    std::vector<double> batch_var;
    for (const auto& set : statistic_sets(x.dims())) {
      const auto [mean, var] = statistics(x, set);
      for (const auto i : set) {
        const auto c = channel_of(x.dims(), i);
        double y = (x.data()[i] - mean) / std::sqrt(var + params().eps);
        if (params().affine) {
          y = y * weight("weight").data()[c] + weight("bias").data()[c];
        }
        if (!fused_slopes().empty() && !(y > 0.0)) {
          y *= fused_slopes()[static_cast<std::size_t>(c)];
        }
        dst.data()[i] = static_cast<float>(y);
      }
      batch_mean.push_back(mean);
      batch_var.push_back(var);
    }
    if (type() == LayerType::batch_norm && training()) {
      update_running_stats(batch_mean, batch_var, x.size() / params().channels);
    }
  }

  // With x_hat = (x - mean) / sqrt(var + eps) and g = dy * gamma[c]:
  // batch statistics: dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps) over each
  // set; running statistics: dx = g / sqrt(var + eps). d gamma = sum dy * x_hat, d beta = sum dy.
  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    const auto& x = *src[0];
    const auto channels = static_cast<std::size_t>(params().channels);
    std::vector<double> diff_gamma(channels, 0.0);
    std::vector<double> diff_beta(channels, 0.0);
    for (const auto& set : statistic_sets(x.dims())) {
      const auto [mean, var] = statistics(x, set);
      const double inv = 1.0 / std::sqrt(var + params().eps);
      double mean_g = 0.0;
      double mean_g_xhat = 0.0;
      for (const auto i : set) {
        const auto c = channel_of(x.dims(), i);
        const double dy = diff_dst.data()[i];
        const double xhat = (x.data()[i] - mean) * inv;
        const double g = dy * (params().affine ? weight("weight").data()[c] : 1.0);
        mean_g += g;
        mean_g_xhat += g * xhat;
        diff_gamma[static_cast<std::size_t>(c)] += dy * xhat;
        diff_beta[static_cast<std::size_t>(c)] += dy;
      }
      const auto count = static_cast<double>(set.size());
      mean_g /= count;
      mean_g_xhat /= count;
      for (const auto i : set) {
        if (diff_src[0] == nullptr) {
          break;
        }
        const auto c = channel_of(x.dims(), i);
        const double xhat = (x.data()[i] - mean) * inv;
        const double g = diff_dst.data()[i] * (params().affine ? weight("weight").data()[c] : 1.0);
        const double dx = batch_statistics() ? (g - mean_g - xhat * mean_g_xhat) * inv : g * inv;
        diff_src[0]->data()[i] = static_cast<float>(dx);
      }
    }
    if (params().affine) {
      for (std::size_t c = 0; c < channels; ++c) {
        grad("weight").values()[c] += static_cast<float>(diff_gamma[c]);
        grad("bias").values()[c] += static_cast<float>(diff_beta[c]);
      }
    }
  }

 private:
  // batch_norm at inference normalises with its running statistics; everything else with the
  // statistics of the values themselves.
  bool batch_statistics() const { return type() != LayerType::batch_norm || training(); }

  std::int64_t channel_of(const Dims& dims, std::int64_t index) const {
    const auto plane = element_count(dims) / (dims[0] * dims[1]);
    return (index / plane) % dims[1];
  }

  // The indices that share statistics: each channel over the batch for batch_norm, each
  // [sample, group] otherwise.
  std::vector<std::vector<std::int64_t>> statistic_sets(const Dims& dims) const {
    const auto channels = params().channels;
    const auto plane = element_count(dims) / (dims[0] * channels);
    const auto per_group = channels / params().groups;
    std::vector<std::vector<std::int64_t>> sets;
    if (type() == LayerType::batch_norm) {
      sets.resize(static_cast<std::size_t>(channels));
      for (std::int64_t n = 0; n < dims[0]; ++n) {
        for (std::int64_t c = 0; c < channels; ++c) {
          for (std::int64_t i = 0; i < plane; ++i) {
            sets[static_cast<std::size_t>(c)].push_back((n * channels + c) * plane + i);
          }
        }
      }
      return sets;
    }
    for (std::int64_t n = 0; n < dims[0]; ++n) {
      for (std::int64_t g = 0; g < params().groups; ++g) {
        // One group: channels g * per_group ... of sample n, contiguous in NC(D)HW.
        auto& set = sets.emplace_back();
        const auto begin = (n * channels + g * per_group) * plane;
        for (std::int64_t i = 0; i < per_group * plane; ++i) {
          set.push_back(begin + i);
        }
      }
    }
    return sets;
  }

  // Mean and biased variance of the set (what PyTorch normalises with), or the running
  // statistics of its channel.
  std::pair<double, double> statistics(const Tensor& x,
                                       const std::vector<std::int64_t>& set) const {
    if (!batch_statistics()) {
      const auto c = channel_of(x.dims(), set.front());
      return {weight("running_mean").data()[c], weight("running_var").data()[c]};
    }
    double mean = 0.0;
    for (const auto i : set) {
      mean += x.data()[i];
    }
    mean /= static_cast<double>(set.size());
    double var = 0.0;
    for (const auto i : set) {
      const double d = x.data()[i] - mean;
      var += d * d;
    }
    return {mean, var / static_cast<double>(set.size())};
  }
};

}  // namespace

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name) {
  return std::make_unique<Normalization>(type, std::move(name));
}

}  // namespace cajal::engine::reference
