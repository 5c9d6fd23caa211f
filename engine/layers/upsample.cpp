#include "engine/layers/upsample.h"

#include <cstdint>
#include <utility>

#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void UpsampleLayer::parse_params(ParamReader& params) {
  scale_factor_ = params.spatial_array("scale_factor", 1);
  linear_ = params.choice("mode", "nearest", {"nearest", "linear"}) == "linear";
}

Dims UpsampleLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  detail::check_rank(*this, src[0], scale_factor_.size() + 2);
  Dims dst = src[0];
  for (std::size_t i = 0; i < scale_factor_.size(); ++i) {
    dst[i + 2] *= scale_factor_[i];
  }
  return dst;
}

namespace {

class DnnlUpsample final : public UpsampleLayer {
 public:
  using UpsampleLayer::UpsampleLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    // Tensors are 64-byte aligned: oneDNN 2.6's jit resampling crashes on a destination that
    // is not 32-byte aligned (engine/tensor.h).
    detail::run_plain(primitive_, *ctx_, *src[0], dst);
  }

  void backward(const std::vector<const Tensor*>& /*src*/, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (diff_src[0] == nullptr) {
      return;
    }
    if (!backward_) {
      build_backward();
    }
    const auto& engine = ctx_->engine;
    backward_.execute(ctx_->stream, {{DNNL_ARG_DIFF_DST, detail::wrap(diff_dst, engine)},
                                     {DNNL_ARG_DIFF_SRC, detail::wrap(*diff_src[0], engine)}});
    ctx_->stream.wait();
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    backward_ = {};  // prepare() again (other dims or mode) builds it anew
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const dnnl::resampling_forward::desc desc(prop, algorithm(), detail::plain_desc(src_dims()[0]),
                                              detail::plain_desc(dst_dims()));
    forward_pd_ = dnnl::resampling_forward::primitive_desc(desc, ctx_->engine);
    primitive_ = dnnl::resampling_forward(forward_pd_);
    if (training()) {
      build_backward();
    }
  }

  void build_backward() {
    const dnnl::resampling_backward::desc desc(algorithm(), detail::plain_desc(src_dims()[0]),
                                               detail::plain_desc(dst_dims()));
    backward_ = dnnl::resampling_backward(
        dnnl::resampling_backward::primitive_desc(desc, ctx_->engine, forward_pd_));
  }

  dnnl::algorithm algorithm() const {
    return linear() ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::resampling_forward::primitive_desc forward_pd_;
  dnnl::primitive primitive_;
  dnnl::primitive backward_;
};

}  // namespace

std::unique_ptr<Layer> make_upsample(LayerType type, std::string name) {
  return std::make_unique<DnnlUpsample>(type, std::move(name));
}

}  // namespace cajal::engine
