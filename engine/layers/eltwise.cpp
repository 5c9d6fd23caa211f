#include "engine/layers/eltwise.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/error.h"
#include "core/select.h"
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

// The variant of `alg` whose backward pass reads dst instead of src, where oneDNN v2.6 has one
// (relu and elu only for alpha >= 0; gelu has none).
dnnl::algorithm use_dst_variant(dnnl::algorithm alg, float alpha) {
  using a = dnnl::algorithm;
  switch (alg) {
    case a::eltwise_relu:
      return alpha >= 0.0f ? a::eltwise_relu_use_dst_for_bwd : alg;
    case a::eltwise_elu:
      return alpha >= 0.0f ? a::eltwise_elu_use_dst_for_bwd : alg;
    case a::eltwise_logistic:
      return a::eltwise_logistic_use_dst_for_bwd;
    case a::eltwise_tanh:
      return a::eltwise_tanh_use_dst_for_bwd;
    default:
      return alg;
  }
}

class DnnlEltwise final : public EltwiseLayer {
 public:
  using EltwiseLayer::EltwiseLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (type() == LayerType::tanh) {
      // By hand (detail::tanh_by_hand); in training the backward reads this dst.
      detail::tanh_by_hand(src[0]->data(), dst.data(), dst.size(), ctx_->threads);
      return;
    }
    detail::run_plain(primitive_, *ctx_, *src[0], dst);
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& dst, const Tensor& diff_dst,
                const std::vector<Tensor*>& diff_src) override {
    if (diff_src[0] == nullptr) {
      return;
    }
    if (!backward_) {
      build_backward();
    }
    const auto& engine = ctx_->engine;
    backward_.execute(ctx_->stream, {{from_dst_ ? DNNL_ARG_DST : DNNL_ARG_SRC,
                                      detail::wrap(from_dst_ ? dst : *src[0], engine)},
                                     {DNNL_ARG_DIFF_DST, detail::wrap(diff_dst, engine)},
                                     {DNNL_ARG_DIFF_SRC, detail::wrap(*diff_src[0], engine)}});
    ctx_->stream.wait();
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    backward_ = {};  // prepare() again (other dims or mode) builds it anew
    auto [alg, alpha, beta] = detail::eltwise_algorithm(type(), activation().alpha);
    algorithm_ = training() ? use_dst_variant(alg, alpha) : alg;
    from_dst_ = algorithm_ != alg;
    alpha_ = alpha;
    beta_ = beta;
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const dnnl::eltwise_forward::desc desc(prop, algorithm_, detail::plain_desc(src_dims()[0]),
                                           alpha_, beta_);
    forward_pd_ = dnnl::eltwise_forward::primitive_desc(desc, ctx_->engine);
    primitive_ = dnnl::eltwise_forward(forward_pd_);
    if (training()) {
      build_backward();
    }
  }

  // The forward primitive descriptor is the hint, as oneDNN asks.
  void build_backward() {
    const auto md = detail::plain_desc(src_dims()[0]);
    const dnnl::eltwise_backward::desc desc(algorithm_, md, md, alpha_, beta_);
    backward_ = dnnl::eltwise_backward(
        dnnl::eltwise_backward::primitive_desc(desc, ctx_->engine, forward_pd_));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::algorithm algorithm_ = dnnl::algorithm::undef;
  bool from_dst_ = false;
  float alpha_ = 0.0f;
  float beta_ = 0.0f;
  dnnl::eltwise_forward::primitive_desc forward_pd_;
  dnnl::primitive primitive_;
  dnnl::primitive backward_;
};

class DnnlPrelu final : public PreluLayer {
 public:
  using PreluLayer::PreluLayer;
  // By hand: oneDNN v2.6 runs a per-channel PReLU on plain layouts with its reference kernel
  // (`ref:any`, 70 % of a MONAI-style UNet's forward). y = x > 0 ? x : slope[c] * x, per block of
  // one channel's plane, chosen by core::select_bits so that the loop vectorises.
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const Tensor& x = *src[0];
    const auto channels = x.dim(1);
    const auto rows = x.dim(0) * channels;
    const auto plane = x.size() / rows;
    constexpr std::int64_t block = 16384;
    const auto blocks_per_row = (plane + block - 1) / block;
    const float* slopes = weight("weight").data();
    const bool shared = num_parameters() == 1;
    const float* in = x.data();
    float* out = dst.data();
#pragma omp parallel for num_threads(ctx_->threads) schedule(static)
    for (std::int64_t b = 0; b < rows * blocks_per_row; ++b) {
      const auto row = b / blocks_per_row;
      const auto begin = row * plane + (b % blocks_per_row) * block;
      const auto end = std::min(begin + block, (row + 1) * plane);
      const float slope = slopes[shared ? 0 : row % channels];
      for (auto i = begin; i < end; ++i) {
        const float v = in[i];
        out[i] = core::select_bits(v > 0.0f, v, slope * v);
      }
    }
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (!backward_) {
      build_backward();
    }
    const auto& engine = ctx_->engine;
    Tensor scratch;
    Tensor* diff_src_tensor = diff_src[0];
    if (diff_src_tensor == nullptr) {
      scratch = Tensor(src[0]->dims());
      diff_src_tensor = &scratch;
    }
    Tensor diff_weights(weight("weight").dims());
    backward_.execute(ctx_->stream, {{DNNL_ARG_SRC, detail::wrap(*src[0], engine)},
                                     {DNNL_ARG_WEIGHTS, weights_},
                                     {DNNL_ARG_DIFF_DST, detail::wrap(diff_dst, engine)},
                                     {DNNL_ARG_DIFF_SRC, detail::wrap(*diff_src_tensor, engine)},
                                     {DNNL_ARG_DIFF_WEIGHTS,
                                      dnnl::memory(weights_md_, engine, diff_weights.data())}});
    ctx_->stream.wait();
    auto& sum = grad("weight");
    for (std::int64_t i = 0; i < sum.size(); ++i) {
      sum.data()[i] += diff_weights.data()[i];
    }
  }

  void weights_changed() override {
    if (!ctx_) {
      return;  // prepare() reorders them
    }
    weights_ = detail::reorder_once(weights_md_, weight("weight").data(),
                                    forward_pd_.weights_desc(), *ctx_);
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    backward_ = {};  // prepare() again (other dims or mode) builds it anew
    const auto& dims = src_dims()[0];
    Dims weight_dims(dims.size(), 1);  // [1, C or 1, 1, ...], broadcast by oneDNN
    weight_dims[1] = num_parameters();
    weights_md_ = detail::plain_desc(weight_dims);
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const dnnl::prelu_forward::desc desc(prop, detail::plain_desc(dims), weights_md_);
    // The forward's descriptor is the backward's hint and gives the weights' layout.
    forward_pd_ = dnnl::prelu_forward::primitive_desc(desc, ctx_->engine);
    weights_changed();
    if (training()) {
      build_backward();
    }
  }

  void build_backward() {
    const auto md = detail::plain_desc(src_dims()[0]);
    const dnnl::prelu_backward::desc desc(md, forward_pd_.weights_desc(), md, weights_md_);
    const dnnl::prelu_backward::primitive_desc pd(desc, ctx_->engine, forward_pd_);
    CAJAL_CHECK(pd.weights_desc() == forward_pd_.weights_desc() &&
                pd.diff_weights_desc() == weights_md_)
        << label() << ": prelu backward chose other weight layouts";
    backward_ = dnnl::prelu_backward(pd);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::memory::desc weights_md_;
  dnnl::prelu_forward::primitive_desc forward_pd_;
  dnnl::memory weights_;  // for the backward primitive
  dnnl::primitive backward_;
};

}  // namespace

std::unique_ptr<Layer> make_eltwise(LayerType type, std::string name) {
  return std::make_unique<DnnlEltwise>(type, std::move(name));
}

std::unique_ptr<Layer> make_prelu(LayerType type, std::string name) {
  return std::make_unique<DnnlPrelu>(type, std::move(name));
}

}  // namespace cajal::engine
