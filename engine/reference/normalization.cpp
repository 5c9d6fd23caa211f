// Naive twin of batch, instance and group normalisation.
#include <cmath>
#include <utility>

#include "engine/layers/normalization.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Normalization final : public NormalizationLayer {
 public:
  using NormalizationLayer::NormalizationLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& p = params();
    const auto& x = *src[0];
    const auto plane = x.size() / (x.dim(0) * p.channels);
    const auto per_group = p.channels / p.groups;
    for (std::int64_t n = 0; n < x.dim(0); ++n) {
      for (std::int64_t g = 0; g < p.groups; ++g) {
        // One group: channels g * per_group ... of sample n, contiguous in NC(D)HW.
        const auto begin = (n * p.channels + g * per_group) * plane;
        const auto count = per_group * plane;
        double mean = 0.0;
        double var = 0.0;
        if (type() != LayerType::batch_norm) {
          for (std::int64_t i = 0; i < count; ++i) {
            mean += x.data()[begin + i];
          }
          mean /= static_cast<double>(count);
          for (std::int64_t i = 0; i < count; ++i) {
            const double d = x.data()[begin + i] - mean;
            var += d * d;
          }
          var /= static_cast<double>(count);  // biased, as PyTorch normalises
        }
        for (std::int64_t i = 0; i < count; ++i) {
          const auto c = g * per_group + i / plane;
          if (type() == LayerType::batch_norm) {
            mean = weight("running_mean").data()[c];
            var = weight("running_var").data()[c];
          }
          double y = (x.data()[begin + i] - mean) / std::sqrt(var + p.eps);
          if (p.affine) {
            y = y * weight("weight").data()[c] + weight("bias").data()[c];
          }
          dst.data()[begin + i] = static_cast<float>(y);
        }
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name) {
  return std::make_unique<Normalization>(type, std::move(name));
}

}  // namespace cajal::engine::reference
