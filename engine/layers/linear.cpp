#include "engine/layers/linear.h"

#include <utility>

#include "core/error.h"
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

// Plain [N, in] and [N, out] tensors; the weights in the layout the primitive picks, refreshed by
// weights_changed() in training (see DnnlConvolution).
class DnnlLinear final : public LinearLayer {
 public:
  using LinearLayer::LinearLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_WEIGHTS, weights_.memory()}};
    if (bias()) {
      args.emplace(DNNL_ARG_BIAS, bias_memory_.memory());
    }
    detail::run_plain(primitive_, *ctx_, *src[0], dst, args);
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && prepared()) << label() << ": backward needs a training prepare()";
    CAJAL_CHECK(diff_dst.dims() == dst_dims() && diff_src.size() == 1) << label();
    const auto& ctx = *ctx_;
    const auto diff_dst_memory = detail::wrap(diff_dst, ctx.engine);
    if (diff_src[0] != nullptr) {
      CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
      backward_data_.execute(ctx.stream,
                             {{DNNL_ARG_DIFF_DST, diff_dst_memory},
                              {DNNL_ARG_WEIGHTS, data_weights_.memory()},
                              {DNNL_ARG_DIFF_SRC, dnnl::memory(detail::plain_desc(src_dims()[0]),
                                                               ctx.engine, diff_src[0]->data())}});
    }
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, detail::wrap(*src[0], ctx.engine)},
                                               {DNNL_ARG_DIFF_DST, diff_dst_memory},
                                               {DNNL_ARG_DIFF_WEIGHTS, diff_weights_.memory()}};
    if (bias()) {
      args.emplace(DNNL_ARG_DIFF_BIAS, diff_bias_.memory());
    }
    backward_weights_.execute(ctx.stream, args);
    diff_weights_.add_to(grad("weight"), ctx);
    if (bias()) {
      diff_bias_.add_to(grad("bias"), ctx);
    }
    ctx.stream.wait();
  }

  void weights_changed() override {
    CAJAL_CHECK(prepared()) << label() << ": weights_changed before prepare";
    refresh_weights();
  }

 private:
  void refresh_weights() {
    weights_.refresh(weight("weight"), *ctx_);
    if (bias()) {
      bias_memory_.refresh(weight("bias"), *ctx_);
    }
    if (training()) {
      data_weights_.refresh(weight("weight"), *ctx_);
    }
  }

  void build(const Context& context) override {
    ctx_ = context.impl();
    using dnnl::memory;
    const auto f32 = memory::data_type::f32;
    const auto& engine = ctx_->engine;
    const auto plain_weights_md = detail::plain_desc({out_features(), in_features()});
    const auto bias_md = bias() ? detail::plain_desc({out_features()}) : memory::desc();
    const memory::desc any_weights_md({out_features(), in_features()}, f32,
                                      memory::format_tag::any);
    const auto src_md = detail::plain_desc(src_dims()[0]);
    const auto dst_md = detail::plain_desc(dst_dims());
    const dnnl::inner_product_forward::desc desc(
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, src_md,
        any_weights_md, bias_md, dst_md);
    const dnnl::inner_product_forward::primitive_desc pd(desc, engine);
    weights_ = detail::WeightBridge(plain_weights_md, pd.weights_desc(), engine);
    if (bias()) {
      bias_memory_ = detail::WeightBridge(bias_md, bias_md, engine);
    }
    primitive_ = dnnl::inner_product_forward(pd);
    if (training()) {
      // Backward descriptors take the forward one as hint.
      const dnnl::inner_product_backward_data::desc data_desc(src_md, any_weights_md, dst_md);
      const dnnl::inner_product_backward_data::primitive_desc data_pd(data_desc, engine, pd);
      data_weights_ = detail::WeightBridge(plain_weights_md, data_pd.weights_desc(), engine);
      backward_data_ = dnnl::inner_product_backward_data(data_pd);
      const dnnl::inner_product_backward_weights::desc weights_desc(src_md, any_weights_md, bias_md,
                                                                    dst_md);
      const dnnl::inner_product_backward_weights::primitive_desc weights_pd(weights_desc, engine,
                                                                            pd);
      diff_weights_ = detail::GradBridge(plain_weights_md, weights_pd.diff_weights_desc(), engine);
      if (bias()) {
        diff_bias_ = detail::GradBridge(bias_md, weights_pd.diff_bias_desc(), engine);
      }
      backward_weights_ = dnnl::inner_product_backward_weights(weights_pd);
    }
    refresh_weights();
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  detail::WeightBridge weights_;
  detail::WeightBridge bias_memory_;
  dnnl::primitive primitive_;
  // Training only.
  detail::WeightBridge data_weights_;
  dnnl::primitive backward_data_;
  detail::GradBridge diff_weights_;
  detail::GradBridge diff_bias_;
  dnnl::primitive backward_weights_;
};

}  // namespace

std::unique_ptr<Layer> make_linear(LayerType type, std::string name) {
  return std::make_unique<DnnlLinear>(type, std::move(name));
}

}  // namespace cajal::engine
