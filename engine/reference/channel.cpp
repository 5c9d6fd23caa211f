// Naive twins of softmax and argmax over channels, concat over channels, element-wise add.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/layers/channel.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Channel final : public ChannelLayer {
 public:
  using ChannelLayer::ChannelLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto batch = dst.dim(0);
    const auto plane = dst.size() / (batch * dst.dim(1));
    if (type() == LayerType::add) {
      for (std::int64_t i = 0; i < dst.size(); ++i) {
        double sum = 0.0;
        for (const auto* s : src) {
          sum += s->data()[i];
        }
        dst.data()[i] = static_cast<float>(sum);
      }
    } else if (type() == LayerType::concat) {
      float* out = dst.data();
      for (std::int64_t n = 0; n < batch; ++n) {
        for (const auto* s : src) {
          const auto block = s->dim(1) * plane;
          for (std::int64_t i = 0; i < block; ++i) {
            *out++ = s->data()[n * block + i];
          }
        }
      }
    } else {
      channel_wise(*src[0], dst, plane);
    }
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& dst, const Tensor& diff_dst,
                const std::vector<Tensor*>& diff_src) override {
    const auto batch = diff_dst.dim(0);
    const auto plane = diff_dst.size() / (batch * diff_dst.dim(1));
    if (type() == LayerType::add) {
      for (auto* d : diff_src) {
        for (std::int64_t i = 0; d != nullptr && i < d->size(); ++i) {
          d->data()[i] = diff_dst.data()[i];
        }
      }
    } else if (type() == LayerType::concat) {
      const float* in = diff_dst.data();
      for (std::int64_t n = 0; n < batch; ++n) {
        for (std::size_t s = 0; s < src.size(); ++s) {
          const auto block = src[s]->dim(1) * plane;
          for (std::int64_t i = 0; i < block; ++i, ++in) {
            if (diff_src[s] != nullptr) {
              diff_src[s]->data()[n * block + i] = *in;
            }
          }
        }
      }
    } else if (type() == LayerType::softmax) {
      softmax_backward(*src[0], diff_dst, diff_src[0], plane);
    } else {
      Layer::backward(src, dst, diff_dst, diff_src);
    }
  }

 private:
  // dx_c = y_c * (dy_c - sum_k dy_k * y_k), with y recomputed from x in double.
  static void softmax_backward(const Tensor& x, const Tensor& diff_dst, Tensor* diff_src,
                               std::int64_t plane) {
    if (diff_src == nullptr) {
      return;
    }
    const auto channels = x.dim(1);
    std::vector<double> y(static_cast<std::size_t>(channels));
    for (std::int64_t n = 0; n < x.dim(0); ++n) {
      for (std::int64_t i = 0; i < plane; ++i) {
        const auto at = [&](std::int64_t c) { return (n * channels + c) * plane + i; };
        double top = x.data()[at(0)];
        for (std::int64_t c = 1; c < channels; ++c) {
          top = std::max(top, static_cast<double>(x.data()[at(c)]));
        }
        double total = 0.0;
        for (std::int64_t c = 0; c < channels; ++c) {
          y[c] = std::exp(x.data()[at(c)] - top);
          total += y[c];
        }
        double dot = 0.0;
        for (std::int64_t c = 0; c < channels; ++c) {
          y[c] /= total;
          dot += y[c] * diff_dst.data()[at(c)];
        }
        for (std::int64_t c = 0; c < channels; ++c) {
          diff_src->data()[at(c)] = static_cast<float>(y[c] * (diff_dst.data()[at(c)] - dot));
        }
      }
    }
  }

  void channel_wise(const Tensor& x, Tensor& dst, std::int64_t plane) const {
    const auto channels = x.dim(1);
    for (std::int64_t n = 0; n < x.dim(0); ++n) {
      for (std::int64_t i = 0; i < plane; ++i) {
        const auto at = [&](std::int64_t c) { return (n * channels + c) * plane + i; };
        std::int64_t best = 0;
        for (std::int64_t c = 1; c < channels; ++c) {
          if (x.data()[at(c)] > x.data()[at(best)]) {
            best = c;
          }
        }
        if (type() == LayerType::argmax) {
          dst.data()[n * plane + i] = static_cast<float>(best);
          continue;
        }
        double total = 0.0;
        for (std::int64_t c = 0; c < channels; ++c) {
          total += std::exp(static_cast<double>(x.data()[at(c)]) - x.data()[at(best)]);
        }
        for (std::int64_t c = 0; c < channels; ++c) {
          dst.data()[at(c)] = static_cast<float>(
              std::exp(static_cast<double>(x.data()[at(c)]) - x.data()[at(best)]) / total);
        }
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_channel(LayerType type, std::string name) {
  return std::make_unique<Channel>(type, std::move(name));
}

}  // namespace cajal::engine::reference
