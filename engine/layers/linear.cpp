#include "engine/layers/linear.h"

#include <utility>

#include "core/error.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"
#include "engine/layers/inner_product.h"

namespace cajal::engine {

void LinearLayer::parse_params(ParamReader& params) {
  in_features_ = params.integer("in_features", 1);
  out_features_ = params.integer("out_features", 1);
  bias_ = params.boolean("bias", true);
}

std::vector<WeightSpec> LinearLayer::weight_specs() const {
  std::vector<WeightSpec> specs{{"weight", {out_features_, in_features_}}};
  if (bias_) {
    specs.push_back({"bias", {out_features_}});
  }
  return specs;
}

Dims LinearLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  detail::check_rank(*this, src[0], 2);
  if (src[0][1] != in_features_) {
    fail("input features of " + to_string(src[0]), std::to_string(in_features_),
         std::to_string(src[0][1]));
  }
  return {src[0][0], out_features_};
}

namespace {

// Plain [N, in] and [N, out] tensors by oneDNN's inner product (detail::InnerProduct): its
// weights in the layout the primitive picks, refreshed by weights_changed() in training.
class DnnlLinear final : public LinearLayer {
 public:
  using LinearLayer::LinearLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    inner_.forward(*src[0], dst.data(), *ctx_);
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && prepared()) << label() << ": backward needs a training prepare()";
    CAJAL_CHECK(diff_dst.dims() == dst_dims() && diff_src.size() == 1) << label();
    if (diff_src[0] != nullptr) {
      CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
    }
    inner_.backward(*src[0], diff_dst.data(), diff_src[0], grad("weight"),
                    bias() ? &grad("bias") : nullptr, *ctx_);
  }

  void weights_changed() override {
    CAJAL_CHECK(prepared()) << label() << ": weights_changed before prepare";
    inner_.refresh(weight("weight"), bias() ? &weight("bias") : nullptr, *ctx_);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    inner_ = detail::InnerProduct(src_dims()[0], out_features(), bias(), training(), ctx_->engine);
    inner_.refresh(weight("weight"), bias() ? &weight("bias") : nullptr, *ctx_);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  detail::InnerProduct inner_;
};

}  // namespace

std::unique_ptr<Layer> make_linear(LayerType type, std::string name) {
  return std::make_unique<DnnlLinear>(type, std::move(name));
}

}  // namespace cajal::engine
