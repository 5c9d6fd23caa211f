// Naive twin of max, average and global average pooling, 2D as 3D with depth 1.
#include <algorithm>
#include <limits>
#include <utility>

#include "engine/layers/pooling.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Pooling final : public PoolingLayer {
 public:
  using PoolingLayer::PoolingLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& p = params();
    const auto& x = *src[0];
    const Grid in = grid_of(x.dims());
    const Grid out = grid_of(dst.dims());
    const Grid k = grid_of_params(p.kernel_size, 1);
    const Grid s = grid_of_params(p.stride, 1);
    const Grid pad = grid_of_params(p.padding, 0);
    const bool max = type() == LayerType::max_pool;
    for (std::int64_t nc = 0; nc < x.dim(0) * x.dim(1); ++nc) {
      const float* plane = x.data() + nc * in.size();
      for (std::int64_t od = 0; od < out.d; ++od)
        for (std::int64_t oh = 0; oh < out.h; ++oh)
          for (std::int64_t ow = 0; ow < out.w; ++ow) {
            double best = -std::numeric_limits<double>::infinity();
            double sum = 0.0;
            std::int64_t inside = 0;
            for (std::int64_t kd = 0; kd < k.d; ++kd)
              for (std::int64_t kh = 0; kh < k.h; ++kh)
                for (std::int64_t kw = 0; kw < k.w; ++kw) {
                  const auto id = od * s.d - pad.d + kd;
                  const auto ih = oh * s.h - pad.h + kh;
                  const auto iw = ow * s.w - pad.w + kw;
                  if (id < 0 || ih < 0 || iw < 0 || id >= in.d || ih >= in.h || iw >= in.w) {
                    continue;
                  }
                  const double v = plane[(id * in.h + ih) * in.w + iw];
                  best = std::max(best, v);
                  sum += v;
                  ++inside;
                }
            const auto count = p.count_include_pad ? k.size() : inside;
            const double value = max ? best : sum / static_cast<double>(count);
            dst.data()[nc * out.size() + (od * out.h + oh) * out.w + ow] =
                static_cast<float>(value);
          }
    }
  }

 private:
  void build(const Context& /*ctx*/) override { set_global_kernel(); }
};

}  // namespace

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name) {
  return std::make_unique<Pooling>(type, std::move(name));
}

}  // namespace cajal::engine::reference
