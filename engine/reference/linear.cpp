// Naive twin of linear (fully connected).
#include <utility>

#include "engine/layers/linear.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Linear final : public LinearLayer {
 public:
  using LinearLayer::LinearLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& x = *src[0];
    const float* w = weight("weight").data();
    for (std::int64_t n = 0; n < x.dim(0); ++n) {
      for (std::int64_t o = 0; o < out_features(); ++o) {
        double sum = bias() ? weight("bias").data()[o] : 0.0;
        for (std::int64_t i = 0; i < in_features(); ++i) {
          sum += static_cast<double>(w[o * in_features() + i]) * x.data()[n * in_features() + i];
        }
        dst.data()[n * out_features() + o] = static_cast<float>(sum);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_linear(LayerType type, std::string name) {
  return std::make_unique<Linear>(type, std::move(name));
}

}  // namespace cajal::engine::reference
