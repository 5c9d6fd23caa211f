// Naive twin of linear (fully connected).
#include <utility>

#include "core/error.h"
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

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training()) << label() << ": backward outside training";
    const auto& x = *src[0];
    const float* w = weight("weight").data();
    const float* dy = diff_dst.data();
    const auto batch = x.dim(0);
    const auto in = in_features();
    const auto out = out_features();
    if (diff_src[0] != nullptr) {
      for (std::int64_t n = 0; n < batch; ++n) {
        for (std::int64_t i = 0; i < in; ++i) {
          double sum = 0.0;
          for (std::int64_t o = 0; o < out; ++o) {
            sum += static_cast<double>(w[o * in + i]) * dy[n * out + o];
          }
          diff_src[0]->data()[n * in + i] = static_cast<float>(sum);
        }
      }
    }
    auto& diff_weight = grad("weight");
    for (std::int64_t o = 0; o < out; ++o) {
      for (std::int64_t i = 0; i < in; ++i) {
        double sum = 0.0;
        for (std::int64_t n = 0; n < batch; ++n) {
          sum += static_cast<double>(x.data()[n * in + i]) * dy[n * out + o];
        }
        diff_weight.data()[o * in + i] += static_cast<float>(sum);
      }
    }
    if (bias()) {
      auto& diff_bias = grad("bias");
      for (std::int64_t o = 0; o < out; ++o) {
        double sum = 0.0;
        for (std::int64_t n = 0; n < batch; ++n) {
          sum += dy[n * out + o];
        }
        diff_bias.data()[o] += static_cast<float>(sum);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_linear(LayerType type, std::string name) {
  return std::make_unique<Linear>(type, std::move(name));
}

}  // namespace cajal::engine::reference
