#include "engine/layers/linear.h"

#include <utility>

#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

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

class DnnlLinear final : public LinearLayer {
 public:
  using LinearLayer::LinearLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_WEIGHTS, weights_}};
    if (bias()) {
      args.emplace(DNNL_ARG_BIAS, bias_memory_);
    }
    detail::run_plain(primitive_, *ctx_, *src[0], dst, args);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    using dnnl::memory;
    const auto f32 = memory::data_type::f32;
    const auto weights_md = detail::plain_desc({out_features(), in_features()});
    const auto bias_md = bias() ? detail::plain_desc({out_features()}) : memory::desc();
    const dnnl::inner_product_forward::desc desc(
        dnnl::prop_kind::forward_inference, detail::plain_desc(src_dims()[0]),
        memory::desc({out_features(), in_features()}, f32, memory::format_tag::any), bias_md,
        detail::plain_desc(dst_dims()));
    const dnnl::inner_product_forward::primitive_desc pd(desc, ctx_->engine);
    weights_ = detail::reorder_once(weights_md, weight("weight").data(), pd.weights_desc(), *ctx_);
    if (bias()) {
      bias_memory_ = detail::reorder_once(bias_md, weight("bias").data(), bias_md, *ctx_);
    }
    primitive_ = dnnl::inner_product_forward(pd);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::memory weights_;
  dnnl::memory bias_memory_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_linear(LayerType type, std::string name) {
  return std::make_unique<DnnlLinear>(type, std::move(name));
}

}  // namespace cajal::engine
