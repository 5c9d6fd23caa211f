#include "engine/layers/upsample.h"

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
    detail::run_plain(primitive_, *ctx_, *src[0], dst);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    const auto algorithm =
        linear() ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
    const dnnl::resampling_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm,
                                              detail::plain_desc(src_dims()[0]),
                                              detail::plain_desc(dst_dims()));
    primitive_ =
        dnnl::resampling_forward(dnnl::resampling_forward::primitive_desc(desc, ctx_->engine));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_upsample(LayerType type, std::string name) {
  return std::make_unique<DnnlUpsample>(type, std::move(name));
}

}  // namespace cajal::engine
