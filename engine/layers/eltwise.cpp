#include "engine/layers/eltwise.h"

#include <utility>

#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void EltwiseLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::leaky_relu) {
    alpha_ = static_cast<float>(params.number("negative_slope", 0.01));
  } else if (type() == LayerType::elu) {
    alpha_ = static_cast<float>(params.number("alpha", 1.0));
  }
}

Dims EltwiseLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (src[0].size() < 2 || src[0].size() > 5) {
    fail("input dims", "2 to 5 dims", to_string(src[0]));
  }
  return src[0];
}

void PreluLayer::parse_params(ParamReader& params) {
  num_parameters_ = params.integer("num_parameters", 1, 1);
}

Dims PreluLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (src[0].size() < 2 || src[0].size() > 5) {
    fail("input dims", "2 to 5 dims", to_string(src[0]));
  }
  if (num_parameters_ != 1) {
    detail::check_channels(*this, src[0], num_parameters_);
  }
  return src[0];
}

namespace {

class DnnlEltwise final : public EltwiseLayer {
 public:
  using EltwiseLayer::EltwiseLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    detail::run_plain(primitive_, *ctx_, *src[0], dst);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    const auto [alg, alpha, beta] = detail::eltwise_algorithm(type(), activation().alpha);
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg,
                                           detail::plain_desc(src_dims()[0]), alpha, beta);
    primitive_ = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(desc, ctx_->engine));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::primitive primitive_;
};

class DnnlPrelu final : public PreluLayer {
 public:
  using PreluLayer::PreluLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    detail::run_plain(primitive_, *ctx_, *src[0], dst, {{DNNL_ARG_WEIGHTS, weights_}});
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    const auto& dims = src_dims()[0];
    Dims weight_dims(dims.size(), 1);  // [1, C or 1, 1, ...], broadcast by oneDNN
    weight_dims[1] = num_parameters();
    const auto weights_md = detail::plain_desc(weight_dims);
    const dnnl::prelu_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         detail::plain_desc(dims), weights_md);
    const dnnl::prelu_forward::primitive_desc pd(desc, ctx_->engine);
    weights_ = detail::reorder_once(weights_md, weight("weight").data(), pd.weights_desc(), *ctx_);
    primitive_ = dnnl::prelu_forward(pd);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::memory weights_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_eltwise(LayerType type, std::string name) {
  return std::make_unique<DnnlEltwise>(type, std::move(name));
}

std::unique_ptr<Layer> make_prelu(LayerType type, std::string name) {
  return std::make_unique<DnnlPrelu>(type, std::move(name));
}

}  // namespace cajal::engine
