// Naive twin of max, average and global average pooling, 2D as 3D with depth 1.
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/layers/pooling.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Pooling final : public PoolingLayer {
 public:
  using PoolingLayer::PoolingLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& x = *src[0];
    for_each_window(x.dims(), dst.dims(), [&](std::int64_t out, const Window& window) {
      double best = -std::numeric_limits<double>::infinity();
      double sum = 0.0;
      for (const auto in : window.inputs) {
        best = std::max(best, static_cast<double>(x.data()[in]));
        sum += x.data()[in];
      }
      const bool max = type() == LayerType::max_pool;
      dst.data()[out] = static_cast<float>(max ? best : sum / window.divisor);
    });
  }

  // Max: the whole diff goes to the window's first maximum (PyTorch's choice on ties). Average:
  // each input of the window gets diff / divisor.
  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training()) << label() << ": backward outside training";
    if (diff_src[0] == nullptr) {
      return;
    }
    const auto& x = *src[0];
    std::vector<double> dx(static_cast<std::size_t>(x.size()), 0.0);
    for_each_window(x.dims(), diff_dst.dims(), [&](std::int64_t out, const Window& window) {
      const double dy = diff_dst.data()[out];
      if (type() != LayerType::max_pool) {
        for (const auto in : window.inputs) {
          dx[static_cast<std::size_t>(in)] += dy / window.divisor;
        }
        return;
      }
      std::int64_t first = window.inputs.front();
      for (const auto in : window.inputs) {
        if (x.data()[in] > x.data()[first]) {
          first = in;
        }
      }
      dx[static_cast<std::size_t>(first)] += dy;
    });
    for (std::int64_t i = 0; i < x.size(); ++i) {
      diff_src[0]->data()[i] = static_cast<float>(dx[static_cast<std::size_t>(i)]);
    }
  }

 private:
  struct Window {
    std::vector<std::int64_t> inputs;  // indices into src, in (kd, kh, kw) order
    double divisor = 1.0;              // average pooling's count
  };

  void build(const Context& /*ctx*/) override { set_global_kernel(); }

  // Calls visit(dst index, window) for every output value.
  template <typename Visit>
  void for_each_window(const Dims& src_dims, const Dims& dst_dims, Visit visit) const {
    const auto& p = params();
    const Grid in = grid_of(src_dims);
    const Grid out = grid_of(dst_dims);
    const Grid k = grid_of_params(p.kernel_size, 1);
    const Grid s = grid_of_params(p.stride, 1);
    const Grid pad = grid_of_params(p.padding, 0);
    Window window;
    for (std::int64_t nc = 0; nc < src_dims[0] * src_dims[1]; ++nc) {
      for (std::int64_t od = 0; od < out.d; ++od)
        for (std::int64_t oh = 0; oh < out.h; ++oh)
          for (std::int64_t ow = 0; ow < out.w; ++ow) {
            window.inputs.clear();
            for (std::int64_t kd = 0; kd < k.d; ++kd)
              for (std::int64_t kh = 0; kh < k.h; ++kh)
                for (std::int64_t kw = 0; kw < k.w; ++kw) {
                  const auto id = od * s.d - pad.d + kd;
                  const auto ih = oh * s.h - pad.h + kh;
                  const auto iw = ow * s.w - pad.w + kw;
                  if (id < 0 || ih < 0 || iw < 0 || id >= in.d || ih >= in.h || iw >= in.w) {
                    continue;
                  }
                  window.inputs.push_back(nc * in.size() + (id * in.h + ih) * in.w + iw);
                }
            window.divisor = static_cast<double>(
                p.count_include_pad ? k.size() : static_cast<std::int64_t>(window.inputs.size()));
            visit(nc * out.size() + (od * out.h + oh) * out.w + ow, window);
          }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name) {
  return std::make_unique<Pooling>(type, std::move(name));
}

}  // namespace cajal::engine::reference
