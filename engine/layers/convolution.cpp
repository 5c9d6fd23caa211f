#include "engine/layers/convolution.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void ConvolutionLayer::parse_params(ParamReader& params) {
  params_.in_channels = params.integer("in_channels", 1);
  params_.out_channels = params.integer("out_channels", 1);
  params_.kernel_size = params.spatial_array("kernel_size", 1);
  const auto rank = params_.kernel_size.size();
  params_.stride = params.spatial("stride", rank, 1, 1);
  params_.padding = params.spatial("padding", rank, 0, 0);
  params_.dilation = params.spatial("dilation", rank, 1, 1);
  params_.groups = params.integer("groups", 1, 1);
  params_.bias = params.boolean("bias", true);
  if (transposed()) {
    params_.output_padding = params.spatial("output_padding", rank, 0, 0);
    for (std::size_t i = 0; i < rank; ++i) {
      if (params_.output_padding[i] >= std::max(params_.stride[i], params_.dilation[i])) {
        params.fail("output_padding", "less than stride or dilation",
                    to_string(params_.output_padding));
      }
    }
  } else {
    params_.output_padding = Dims(rank, 0);
  }
  if (params_.in_channels % params_.groups || params_.out_channels % params_.groups) {
    params.fail("groups", "a divisor of in_channels and out_channels",
                std::to_string(params_.groups));
  }
}

std::vector<WeightSpec> ConvolutionLayer::weight_specs() const {
  const auto& p = params_;
  Dims weight = transposed() ? Dims{p.in_channels, p.out_channels / p.groups}
                             : Dims{p.out_channels, p.in_channels / p.groups};
  weight.insert(weight.end(), p.kernel_size.begin(), p.kernel_size.end());
  std::vector<WeightSpec> specs{{"weight", weight}};
  if (p.bias) {
    specs.push_back({"bias", {p.out_channels}});
  }
  return specs;
}

Dims ConvolutionLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, adds_residual() ? 2 : 1);
  detail::check_rank(*this, src[0], params_.kernel_size.size() + 2);
  detail::check_channels(*this, src[0], params_.in_channels);
  Dims dst{src[0][0], params_.out_channels};
  for (std::size_t i = 0; i < params_.kernel_size.size(); ++i) {
    const auto extent = params_.dilation[i] * (params_.kernel_size[i] - 1) + 1;
    const auto in = src[0][i + 2];
    const auto out = transposed() ? (in - 1) * params_.stride[i] - 2 * params_.padding[i] + extent +
                                        params_.output_padding[i]
                                  : (in + 2 * params_.padding[i] - extent) / params_.stride[i] + 1;
    if (out < 1 || (!transposed() && in + 2 * params_.padding[i] < extent)) {
      fail("input dims " + to_string(src[0]), "a spatial size the kernel fits in",
           "an output size of " + std::to_string(out) + " on axis " + std::to_string(i + 2));
    }
    dst.push_back(out);
  }
  if (adds_residual() && src[1] != dst) {
    fail("residual dims", to_string(dst), to_string(src[1]));
  }
  return dst;
}

std::int64_t ConvolutionLayer::flops() const {
  // Every (input voxel of a transposed one, or output voxel, and kernel tap) is one multiply-add
  // per channel pair of its group.
  const auto& voxels = transposed() ? src_dims()[0] : dst_dims();
  const auto per_group = transposed() ? params_.out_channels : params_.in_channels;
  const auto other = transposed() ? params_.in_channels : params_.out_channels;
  return 2 * element_count(voxels) / other * other * (per_group / params_.groups) *
         element_count(params_.kernel_size);
}

void ConvolutionLayer::fold_scale_shift(std::span<const float> scale,
                                        std::span<const float> shift) {
  const auto oc_count = params_.out_channels;
  CAJAL_CHECK(!prepared() && std::ssize(scale) == oc_count && std::ssize(shift) == oc_count)
      << label() << ": fold_scale_shift";
  Tensor weights = weight("weight");
  const auto groups = params_.groups;
  const auto dim0 = weights.dim(0);
  const auto dim1 = weights.dim(1);
  const auto kernel = weights.size() / (dim0 * dim1);
  for (std::int64_t a = 0; a < dim0; ++a) {
    for (std::int64_t b = 0; b < dim1; ++b) {
      // [OC, IC/g, K] or, transposed, [IC, OC/g, K] with oc = group * OC/g + b
      const auto oc = transposed() ? a / (dim0 / groups) * dim1 + b : a;
      float* k = weights.data() + (a * dim1 + b) * kernel;
      for (std::int64_t i = 0; i < kernel; ++i) {
        k[i] *= scale[static_cast<std::size_t>(oc)];
      }
    }
  }
  Tensor bias({oc_count}, 0.0f);
  for (std::int64_t oc = 0; oc < oc_count; ++oc) {
    const auto c = static_cast<std::size_t>(oc);
    const float old = params_.bias ? weight("bias").data()[oc] : 0.0f;
    bias.data()[oc] = old * scale[c] + shift[c];
  }
  set_weight("weight", std::move(weights));
  set_weight("bias", std::move(bias));
  params_.bias = true;
}

void ConvolutionLayer::fuse(const PostOp& op) {
  CAJAL_CHECK(!prepared()) << label() << ": fuse after prepare";
  CAJAL_CHECK(op.type != LayerType::add || !adds_residual()) << label() << ": a second add";
  post_ops_.push_back(op);
}

bool ConvolutionLayer::adds_residual() const {
  return std::any_of(post_ops_.begin(), post_ops_.end(),
                     [](const PostOp& op) { return op.type == LayerType::add; });
}

namespace {

class DnnlConvolution final : public ConvolutionLayer {
 public:
  using ConvolutionLayer::ConvolutionLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& ctx = *ctx_;
    const auto src_memory = src_.in(*src[0], ctx);
    // With a fused add, the primitive adds to what the destination holds: the residual.
    const auto dst_memory =
        adds_residual() ? dst_.out_holding(*src[1], dst, ctx) : dst_.out(dst, ctx);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, src_memory}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_memory}};
    if (bias_) {
      args.emplace(DNNL_ARG_BIAS, bias_);
    }
    primitive_.execute(ctx.stream, args);
    dst_.out_done(dst, ctx);
    ctx.stream.wait();
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    const auto& p = params();
    const auto& engine = ctx_->engine;
    using dnnl::memory;
    const auto any = memory::format_tag::any;
    const auto f32 = memory::data_type::f32;
    // oneDNN's weights: [OC, IC, K...] or, grouped, [G, OC/G, IC/G, K...].
    memory::dims weight_dims{p.out_channels, p.in_channels};
    if (p.groups > 1) {
      weight_dims = {p.groups, p.out_channels / p.groups, p.in_channels / p.groups};
    }
    weight_dims.insert(weight_dims.end(), p.kernel_size.begin(), p.kernel_size.end());
    memory::dims dilation;
    for (const auto d : p.dilation) {
      dilation.push_back(d - 1);
    }
    const memory::dims stride(p.stride.begin(), p.stride.end());
    const memory::dims padding(p.padding.begin(), p.padding.end());
    const memory::desc src_md(src_dims()[0], f32, any);
    const memory::desc weights_md(weight_dims, f32, any);
    const memory::desc bias_md =
        p.bias ? memory::desc({p.out_channels}, f32, memory::format_tag::a) : memory::desc();
    const memory::desc dst_md(dst_dims(), f32, any);

    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    for (const auto& op : post_ops()) {
      if (op.type == LayerType::add) {
        ops.append_sum(1.0f);
        continue;
      }
      const auto [alg, alpha, beta] = detail::eltwise_algorithm(op.type, op.alpha);
      ops.append_eltwise(1.0f, alg, alpha, beta);
    }
    attr.set_post_ops(ops);

    memory::desc plain_weights_md;
    const bool grouped = p.groups > 1;
    const bool three_d = p.kernel_size.size() == 3;
    if (transposed()) {
      using tag = memory::format_tag;
      plain_weights_md = memory::desc(
          weight_dims, f32,
          grouped ? (three_d ? tag::giodhw : tag::giohw) : (three_d ? tag::iodhw : tag::iohw));
      dnnl::deconvolution_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, src_md,
          weights_md, bias_md, dst_md, stride, dilation, padding, padding);
      const dnnl::deconvolution_forward::primitive_desc pd(desc, attr, engine);
      finish_build(pd, plain_weights_md, dnnl::deconvolution_forward(pd));
    } else {
      plain_weights_md = memory::desc(weight_dims, f32, detail::plain_tag(weight_dims.size()));
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                           dnnl::algorithm::convolution_direct, src_md, weights_md,
                                           bias_md, dst_md, stride, dilation, padding, padding);
      const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
      finish_build(pd, plain_weights_md, dnnl::convolution_forward(pd));
    }
  }

  template <typename PrimitiveDesc>
  void finish_build(const PrimitiveDesc& pd, const dnnl::memory::desc& plain_weights_md,
                    dnnl::primitive primitive) {
    const auto& engine = ctx_->engine;
    src_ = detail::Bridge(detail::plain_desc(src_dims()[0]), pd.src_desc(), engine);
    dst_ = detail::Bridge(detail::plain_desc(dst_dims()), pd.dst_desc(), engine);
    weights_ =
        detail::reorder_once(plain_weights_md, weight("weight").data(), pd.weights_desc(), *ctx_);
    bias_ = dnnl::memory();
    if (params().bias) {
      bias_ = detail::reorder_once(detail::plain_desc({params().out_channels}),
                                   weight("bias").data(), pd.bias_desc(), *ctx_);
    }
    primitive_ = std::move(primitive);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  detail::Bridge src_;
  detail::Bridge dst_;
  dnnl::memory weights_;
  dnnl::memory bias_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name) {
  return std::make_unique<DnnlConvolution>(type, std::move(name));
}

}  // namespace cajal::engine
