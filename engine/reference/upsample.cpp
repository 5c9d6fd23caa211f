// Naive twin of nearest and (bi/tri)linear upsampling, PyTorch's align_corners=False.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/layers/upsample.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {
namespace {

// Source taps of one output index on one axis: two indices and the weight of the second.
struct Taps {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  double frac = 0.0;
};

Taps taps(std::int64_t out, std::int64_t factor, std::int64_t in_size, bool linear) {
  if (!linear) {
    const auto i = out / factor;
    return {i, i, 0.0};
  }
  const double x =
      std::max((static_cast<double>(out) + 0.5) / static_cast<double>(factor) - 0.5, 0.0);
  const auto lo = std::min(static_cast<std::int64_t>(x), in_size - 1);
  const auto hi = std::min(lo + 1, in_size - 1);
  return {lo, hi, x - static_cast<double>(lo)};
}

class Upsample final : public UpsampleLayer {
 public:
  using UpsampleLayer::UpsampleLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& x = *src[0];
    const Grid in = grid_of(x.dims());
    const Grid out = grid_of(dst.dims());
    const Grid f = grid_of_params(scale_factor(), 1);
    for (std::int64_t nc = 0; nc < x.dim(0) * x.dim(1); ++nc) {
      const float* plane = x.data() + nc * in.size();
      for (std::int64_t od = 0; od < out.d; ++od)
        for (std::int64_t oh = 0; oh < out.h; ++oh)
          for (std::int64_t ow = 0; ow < out.w; ++ow) {
            const Taps td = taps(od, f.d, in.d, linear());
            const Taps th = taps(oh, f.h, in.h, linear());
            const Taps tw = taps(ow, f.w, in.w, linear());
            double value = 0.0;
            for (int a = 0; a < 2; ++a)
              for (int b = 0; b < 2; ++b)
                for (int c = 0; c < 2; ++c) {
                  const double share = (a ? td.frac : 1.0 - td.frac) *
                                       (b ? th.frac : 1.0 - th.frac) *
                                       (c ? tw.frac : 1.0 - tw.frac);
                  const auto id = a ? td.hi : td.lo;
                  const auto ih = b ? th.hi : th.lo;
                  const auto iw = c ? tw.hi : tw.lo;
                  value += share * plane[(id * in.h + ih) * in.w + iw];
                }
            dst.data()[nc * out.size() + (od * out.h + oh) * out.w + ow] =
                static_cast<float>(value);
          }
    }
  }

  // The forward's adjoint: each output's gradient goes back to its taps with their shares.
  void backward(const std::vector<const Tensor*>& /*src*/, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (diff_src[0] == nullptr) {
      return;
    }
    Tensor& dx = *diff_src[0];
    const Grid in = grid_of(dx.dims());
    const Grid out = grid_of(diff_dst.dims());
    const Grid f = grid_of_params(scale_factor(), 1);
    std::vector<double> sums(static_cast<std::size_t>(in.size()));
    for (std::int64_t nc = 0; nc < dx.dim(0) * dx.dim(1); ++nc) {
      std::fill(sums.begin(), sums.end(), 0.0);
      for (std::int64_t od = 0; od < out.d; ++od)
        for (std::int64_t oh = 0; oh < out.h; ++oh)
          for (std::int64_t ow = 0; ow < out.w; ++ow) {
            const Taps td = taps(od, f.d, in.d, linear());
            const Taps th = taps(oh, f.h, in.h, linear());
            const Taps tw = taps(ow, f.w, in.w, linear());
            const double dy = diff_dst.data()[nc * out.size() + (od * out.h + oh) * out.w + ow];
            for (int a = 0; a < 2; ++a)
              for (int b = 0; b < 2; ++b)
                for (int c = 0; c < 2; ++c) {
                  const double share = (a ? td.frac : 1.0 - td.frac) *
                                       (b ? th.frac : 1.0 - th.frac) *
                                       (c ? tw.frac : 1.0 - tw.frac);
                  const auto id = a ? td.hi : td.lo;
                  const auto ih = b ? th.hi : th.lo;
                  const auto iw = c ? tw.hi : tw.lo;
                  sums[static_cast<std::size_t>((id * in.h + ih) * in.w + iw)] += share * dy;
                }
          }
      for (std::int64_t i = 0; i < in.size(); ++i) {
        dx.data()[nc * in.size() + i] = static_cast<float>(sums[static_cast<std::size_t>(i)]);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_upsample(LayerType type, std::string name) {
  return std::make_unique<Upsample>(type, std::move(name));
}

}  // namespace cajal::engine::reference
