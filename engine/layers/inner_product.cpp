#include "engine/layers/inner_product.h"

#include <unordered_map>

#include "core/error.h"

namespace cajal::engine::detail {

InnerProduct::InnerProduct(const Dims& src, std::int64_t out_features, bool bias, bool training,
                           const dnnl::engine& engine)
    : bias_(bias), training_(training) {
  using dnnl::memory;
  Dims weight_dims{out_features};
  weight_dims.insert(weight_dims.end(), src.begin() + 1, src.end());
  const auto plain_weights = plain_desc(weight_dims);
  const memory::desc any_weights(memory::dims(weight_dims.begin(), weight_dims.end()),
                                 memory::data_type::f32, memory::format_tag::any);
  const auto bias_md = bias ? plain_desc({out_features}) : memory::desc();
  const auto src_md = plain_desc(src);
  dst_ = plain_desc({src[0], out_features});
  const dnnl::inner_product_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, src_md,
      any_weights, bias_md, dst_);
  const dnnl::inner_product_forward::primitive_desc pd(desc, engine);
  weights_ = WeightBridge(plain_weights, pd.weights_desc(), engine);
  if (bias) {
    bias_memory_ = WeightBridge(bias_md, bias_md, engine);
  }
  forward_ = dnnl::inner_product_forward(pd);
  if (!training) {
    return;
  }
  // Backward descriptors take the forward one as hint.
  const dnnl::inner_product_backward_data::desc data_desc(src_md, any_weights, dst_);
  const dnnl::inner_product_backward_data::primitive_desc data_pd(data_desc, engine, pd);
  data_weights_ = WeightBridge(plain_weights, data_pd.weights_desc(), engine);
  backward_data_ = dnnl::inner_product_backward_data(data_pd);
  const dnnl::inner_product_backward_weights::desc weights_desc(src_md, any_weights, bias_md, dst_);
  const dnnl::inner_product_backward_weights::primitive_desc weights_pd(weights_desc, engine, pd);
  diff_weights_ = GradBridge(plain_weights, weights_pd.diff_weights_desc(), engine);
  if (bias) {
    diff_bias_ = GradBridge(bias_md, weights_pd.diff_bias_desc(), engine);
  }
  backward_weights_ = dnnl::inner_product_backward_weights(weights_pd);
}

void InnerProduct::refresh(const Tensor& weight, const Tensor* bias, const ContextImpl& ctx) {
  weights_.refresh(weight, ctx);
  if (bias_) {
    CAJAL_CHECK(bias != nullptr) << "InnerProduct::refresh without its bias";
    bias_memory_.refresh(*bias, ctx);
  }
  if (training_) {
    data_weights_.refresh(weight, ctx);
  }
}

void InnerProduct::forward(const Tensor& src, float* dst, const ContextImpl& ctx) const {
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(src, ctx.engine)},
                                             {DNNL_ARG_WEIGHTS, weights_.memory()},
                                             {DNNL_ARG_DST, dnnl::memory(dst_, ctx.engine, dst)}};
  if (bias_) {
    args.emplace(DNNL_ARG_BIAS, bias_memory_.memory());
  }
  forward_.execute(ctx.stream, args);
  ctx.stream.wait();
}

void InnerProduct::backward(const Tensor& src, const float* diff_dst, Tensor* diff_src,
                            Tensor& grad_weight, Tensor* grad_bias, const ContextImpl& ctx) const {
  CAJAL_CHECK(training_ && (grad_bias != nullptr) == bias_) << "InnerProduct::backward";
  const dnnl::memory dy(dst_, ctx.engine, const_cast<float*>(diff_dst));
  if (diff_src != nullptr) {
    backward_data_.execute(
        ctx.stream, {{DNNL_ARG_DIFF_DST, dy},
                     {DNNL_ARG_WEIGHTS, data_weights_.memory()},
                     {DNNL_ARG_DIFF_SRC,
                      dnnl::memory(plain_desc(diff_src->dims()), ctx.engine, diff_src->data())}});
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(src, ctx.engine)},
                                             {DNNL_ARG_DIFF_DST, dy},
                                             {DNNL_ARG_DIFF_WEIGHTS, diff_weights_.memory()}};
  if (bias_) {
    args.emplace(DNNL_ARG_DIFF_BIAS, diff_bias_.memory());
  }
  backward_weights_.execute(ctx.stream, args);
  diff_weights_.add_to(grad_weight, ctx);
  if (bias_) {
    diff_bias_.add_to(*grad_bias, ctx);
  }
  ctx.stream.wait();
}

}  // namespace cajal::engine::detail
