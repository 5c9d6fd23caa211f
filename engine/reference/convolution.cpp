// Naive twin of convolution and transposed convolution, 2D as 3D with depth 1.
#include <utility>
#include <vector>

#include "engine/layers/convolution.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Convolution final : public ConvolutionLayer {
 public:
  using ConvolutionLayer::ConvolutionLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& p = params();
    const auto& x = *src[0];
    const auto batch = x.dim(0);
    const Grid in = grid_of(x.dims());
    const Grid out = grid_of(dst.dims());
    const Grid k = grid_of_params(p.kernel_size, 1);
    const Grid s = grid_of_params(p.stride, 1);
    const Grid pad = grid_of_params(p.padding, 0);
    const Grid dil = grid_of_params(p.dilation, 1);
    const auto icg = p.in_channels / p.groups;
    const auto ocg = p.out_channels / p.groups;
    const float* w = weight("weight").data();
    std::vector<double> sum(static_cast<std::size_t>(dst.size()), 0.0);
    const auto at = [](const Grid& g, std::int64_t nc, std::int64_t d, std::int64_t h,
                       std::int64_t ww) { return ((nc * g.d + d) * g.h + h) * g.w + ww; };
    // Every (input voxel, kernel tap) pair adds one product to the output voxel it maps to.
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t g = 0; g < p.groups; ++g)
        for (std::int64_t oc = 0; oc < ocg; ++oc)
          for (std::int64_t ic = 0; ic < icg; ++ic)
            for (std::int64_t kd = 0; kd < k.d; ++kd)
              for (std::int64_t kh = 0; kh < k.h; ++kh)
                for (std::int64_t kw = 0; kw < k.w; ++kw) {
                  const auto tap = (kd * k.h + kh) * k.w + kw;
                  const auto c_in = g * icg + ic;
                  const auto c_out = g * ocg + oc;
                  const double wv = transposed() ? w[(c_in * ocg + oc) * k.size() + tap]
                                                 : w[(c_out * icg + ic) * k.size() + tap];
                  const Grid& a = transposed() ? in : out;  // the loop runs over a
                  const Grid& b = transposed() ? out : in;  // and reads or writes b
                  for (std::int64_t i = 0; i < a.d; ++i) {
                    const auto j = i * s.d - pad.d + kd * dil.d;
                    if (j < 0 || j >= b.d)
                      continue;
                    for (std::int64_t u = 0; u < a.h; ++u) {
                      const auto v = u * s.h - pad.h + kh * dil.h;
                      if (v < 0 || v >= b.h)
                        continue;
                      for (std::int64_t x0 = 0; x0 < a.w; ++x0) {
                        const auto x1 = x0 * s.w - pad.w + kw * dil.w;
                        if (x1 < 0 || x1 >= b.w)
                          continue;
                        if (transposed()) {
                          sum[static_cast<std::size_t>(
                              at(out, n * p.out_channels + c_out, j, v, x1))] +=
                              wv * x.data()[at(in, n * p.in_channels + c_in, i, u, x0)];
                        } else {
                          sum[static_cast<std::size_t>(
                              at(out, n * p.out_channels + c_out, i, u, x0))] +=
                              wv * x.data()[at(in, n * p.in_channels + c_in, j, v, x1)];
                        }
                      }
                    }
                  }
                }
    for (std::int64_t i = 0; i < dst.size(); ++i) {
      const auto c = (i / out.size()) % p.out_channels;
      double value = sum[static_cast<std::size_t>(i)] + (p.bias ? weight("bias").data()[c] : 0.0);
      for (const auto& op : post_ops()) {
        value = op.type == LayerType::add ? value + src[1]->data()[i]
                                          : activate(op.type, op.alpha, value);
      }
      dst.data()[i] = static_cast<float>(value);
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name) {
  return std::make_unique<Convolution>(type, std::move(name));
}

}  // namespace cajal::engine::reference
