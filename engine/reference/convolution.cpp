// Naive twin of convolution and transposed convolution, 2D as 3D with depth 1.
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/layers/convolution.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

class Convolution final : public ConvolutionLayer {
 public:
  using ConvolutionLayer::ConvolutionLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (!fused_pool()) {
      convolve(src, dst);
      return;
    }
    Tensor conv(convolved_dims(src[0]->dims()));
    convolve(src, conv);
    pool(conv, *fused_pool(), dst);
  }

  // The convolution and its post-ops into dst of the convolution's dims.
  void convolve(const std::vector<const Tensor*>& src, Tensor& dst) const {
    const auto& p = params();
    const auto& x = *src[0];
    const float* w = weight("weight").data();
    std::vector<double> sum(static_cast<std::size_t>(dst.size()), 0.0);
    for_each_product(
        x.dims(), dst.dims(), [&](std::int64_t in, std::int64_t tap, std::int64_t out) {
          sum[static_cast<std::size_t>(out)] += static_cast<double>(w[tap]) * x.data()[in];
        });
    const auto voxels = dst.size() / (dst.dim(0) * p.out_channels);
    for (std::int64_t i = 0; i < dst.size(); ++i) {
      const auto c = (i / voxels) % p.out_channels;
      double value = sum[static_cast<std::size_t>(i)] + (p.bias ? weight("bias").data()[c] : 0.0);
      for (const auto& op : post_ops()) {
        value = op.type == LayerType::add ? value + src[1]->data()[i]
                                          : activate(op.type, op.alpha, value);
      }
      dst.data()[i] = static_cast<float>(value);
    }
  }

  // A fused pooling: each window's maximum, or its mean in double (windows tile `conv`).
  static void pool(const Tensor& conv, const FusedPool& pool, Tensor& dst) {
    const std::size_t lead = 5 - conv.dims().size();  // 2D as 3D with depth 1
    Dims in(5, 1);
    Dims out(5, 1);
    Dims window(5, 1);
    for (std::size_t i = 0; i < conv.dims().size(); ++i) {
      in[i < 2 ? i : i + lead] = conv.dim(static_cast<int>(i));
      out[i < 2 ? i : i + lead] = dst.dim(static_cast<int>(i));
    }
    for (std::size_t i = 0; i < pool.kernel.size(); ++i) {
      window[2 + lead + i] = pool.kernel[i];
    }
    std::int64_t at = 0;
    for (std::int64_t nc = 0; nc < out[0] * out[1]; ++nc) {
      for (std::int64_t d = 0; d < out[2]; ++d) {
        for (std::int64_t h = 0; h < out[3]; ++h) {
          for (std::int64_t w = 0; w < out[4]; ++w) {
            double best = -std::numeric_limits<double>::infinity();
            double sum = 0.0;
            for (std::int64_t a = 0; a < window[2]; ++a) {
              for (std::int64_t b = 0; b < window[3]; ++b) {
                for (std::int64_t c = 0; c < window[4]; ++c) {
                  const float v =
                      conv.data()[((nc * in[2] + d * window[2] + a) * in[3] + h * window[3] + b) *
                                      in[4] +
                                  w * window[4] + c];
                  best = std::max(best, static_cast<double>(v));
                  sum += v;
                }
              }
            }
            dst.data()[at++] = static_cast<float>(
                pool.type == LayerType::max_pool
                    ? best
                    : sum / static_cast<double>(window[2] * window[3] * window[4]));
          }
        }
      }
    }
  }

  // The same products, read the other way: each adds w * diff_dst to diff_src and
  // src * diff_dst to diff_weight.
  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && post_ops().empty()) << label() << ": backward";
    const auto& p = params();
    const auto& x = *src[0];
    const float* w = weight("weight").data();
    const float* dy = diff_dst.data();
    std::vector<double> dx(static_cast<std::size_t>(x.size()), 0.0);
    std::vector<double> dw(static_cast<std::size_t>(weight("weight").size()), 0.0);
    for_each_product(
        x.dims(), diff_dst.dims(), [&](std::int64_t in, std::int64_t tap, std::int64_t out) {
          dx[static_cast<std::size_t>(in)] += static_cast<double>(w[tap]) * dy[out];
          dw[static_cast<std::size_t>(tap)] += static_cast<double>(x.data()[in]) * dy[out];
        });
    if (diff_src[0] != nullptr) {
      for (std::int64_t i = 0; i < x.size(); ++i) {
        diff_src[0]->data()[i] = static_cast<float>(dx[static_cast<std::size_t>(i)]);
      }
    }
    auto& diff_weight = grad("weight");
    for (std::int64_t i = 0; i < diff_weight.size(); ++i) {
      diff_weight.data()[i] += static_cast<float>(dw[static_cast<std::size_t>(i)]);
    }
    if (p.bias) {
      const auto voxels = diff_dst.size() / (diff_dst.dim(0) * p.out_channels);
      std::vector<double> db(static_cast<std::size_t>(p.out_channels), 0.0);
      for (std::int64_t i = 0; i < diff_dst.size(); ++i) {
        db[static_cast<std::size_t>((i / voxels) % p.out_channels)] += dy[i];
      }
      auto& diff_bias = grad("bias");
      for (std::int64_t c = 0; c < p.out_channels; ++c) {
        diff_bias.data()[c] += static_cast<float>(db[static_cast<std::size_t>(c)]);
      }
    }
  }

 private:
  // Calls visit(src index, weight index, dst index) for every product of one input value and
  // one kernel tap that adds to an output value.
  template <typename Visit>
  void for_each_product(const Dims& src_dims, const Dims& dst_dims, Visit visit) const {
    const auto& p = params();
    const auto batch = src_dims[0];
    const Grid in = grid_of(src_dims);
    const Grid out = grid_of(dst_dims);
    const Grid k = grid_of_params(p.kernel_size, 1);
    const Grid s = grid_of_params(p.stride, 1);
    const Grid pad = grid_of_params(p.padding, 0);
    const Grid dil = grid_of_params(p.dilation, 1);
    const auto icg = p.in_channels / p.groups;
    const auto ocg = p.out_channels / p.groups;
    const auto at = [](const Grid& g, std::int64_t nc, std::int64_t d, std::int64_t h,
                       std::int64_t ww) { return ((nc * g.d + d) * g.h + h) * g.w + ww; };
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
                  const auto w = transposed() ? (c_in * ocg + oc) * k.size() + tap
                                              : (c_out * icg + ic) * k.size() + tap;
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
                          visit(at(in, n * p.in_channels + c_in, i, u, x0), w,
                                at(out, n * p.out_channels + c_out, j, v, x1));
                        } else {
                          visit(at(in, n * p.in_channels + c_in, j, v, x1), w,
                                at(out, n * p.out_channels + c_out, i, u, x0));
                        }
                      }
                    }
                  }
                }
  }
};

}  // namespace

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name) {
  return std::make_unique<Convolution>(type, std::move(name));
}

}  // namespace cajal::engine::reference
