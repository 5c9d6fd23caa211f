#include "engine/layers/pooling.h"

#include <utility>

#include "core/error.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void PoolingLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::global_avg_pool) {
    return;
  }
  params_.kernel_size = params.spatial_array("kernel_size", 1);
  const auto rank = params_.kernel_size.size();
  params_.stride = params.spatial("stride", rank, 0, 1);
  if (params_.stride == Dims(rank, 0)) {
    params_.stride = params_.kernel_size;
  }
  params_.padding = params.spatial("padding", rank, 0, 0);
  for (std::size_t i = 0; i < rank; ++i) {
    if (2 * params_.padding[i] > params_.kernel_size[i]) {
      params.fail("padding", "at most half of kernel_size " + to_string(params_.kernel_size),
                  to_string(params_.padding));
    }
  }
  if (type() == LayerType::avg_pool) {
    params_.count_include_pad = params.boolean("count_include_pad", true);
  }
}

Dims PoolingLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (type() == LayerType::global_avg_pool) {
    detail::check_rank(*this, src[0], 0);
    Dims dst(src[0].size(), 1);
    dst[0] = src[0][0];
    dst[1] = src[0][1];
    return dst;
  }
  detail::check_rank(*this, src[0], params_.kernel_size.size() + 2);
  Dims dst{src[0][0], src[0][1]};
  for (std::size_t i = 0; i < params_.kernel_size.size(); ++i) {
    const auto padded = src[0][i + 2] + 2 * params_.padding[i];
    if (padded < params_.kernel_size[i]) {
      fail("input dims " + to_string(src[0]), "a spatial size the kernel fits in",
           "size " + std::to_string(src[0][i + 2]) + " on axis " + std::to_string(i + 2));
    }
    dst.push_back((padded - params_.kernel_size[i]) / params_.stride[i] + 1);
  }
  return dst;
}

void PoolingLayer::set_global_kernel() {
  if (type() != LayerType::global_avg_pool) {
    return;
  }
  const auto& dims = src_dims()[0];
  params_.kernel_size.assign(dims.begin() + 2, dims.end());
  params_.stride = params_.kernel_size;
  params_.padding = Dims(params_.kernel_size.size(), 0);
}

namespace {

class DnnlPooling final : public PoolingLayer {
 public:
  using PoolingLayer::PoolingLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    std::unordered_map<int, dnnl::memory> args;
    if (workspace_) {
      // Where each maximum came from, for backward().
      args.emplace(DNNL_ARG_WORKSPACE, workspace_);
    }
    detail::run_plain(primitive_, *ctx_, *src[0], dst, args);
  }

  void backward(const std::vector<const Tensor*>& /*src*/, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && prepared()) << label() << ": backward needs a training prepare()";
    CAJAL_CHECK(diff_dst.dims() == dst_dims() && diff_src.size() == 1) << label();
    if (diff_src[0] == nullptr) {
      return;
    }
    CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
    const auto& ctx = *ctx_;
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_DIFF_DST, detail::wrap(diff_dst, ctx.engine)},
        {DNNL_ARG_DIFF_SRC,
         dnnl::memory(detail::plain_desc(src_dims()[0]), ctx.engine, diff_src[0]->data())}};
    if (workspace_) {
      args.emplace(DNNL_ARG_WORKSPACE, workspace_);
    }
    backward_.execute(ctx.stream, args);
    ctx.stream.wait();
  }

 private:
  void build(const Context& context) override {
    ctx_ = context.impl();
    set_global_kernel();
    const auto& p = params();
    using alg = dnnl::algorithm;
    const auto algorithm = type() == LayerType::max_pool ? alg::pooling_max
                           : p.count_include_pad         ? alg::pooling_avg_include_padding
                                                         : alg::pooling_avg_exclude_padding;
    const dnnl::memory::dims kernel(p.kernel_size.begin(), p.kernel_size.end());
    const dnnl::memory::dims stride(p.stride.begin(), p.stride.end());
    const dnnl::memory::dims padding(p.padding.begin(), p.padding.end());
    const auto src_md = detail::plain_desc(src_dims()[0]);
    const auto dst_md = detail::plain_desc(dst_dims());
    const dnnl::pooling_forward::desc desc(
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
        algorithm, src_md, dst_md, stride, kernel, padding, padding);
    const dnnl::pooling_forward::primitive_desc pd(desc, ctx_->engine);
    primitive_ = dnnl::pooling_forward(pd);
    workspace_ = dnnl::memory();
    if (!training()) {
      return;
    }
    if (pd.workspace_desc().get_size() > 0) {
      workspace_ = dnnl::memory(pd.workspace_desc(), ctx_->engine);
    }
    // The backward descriptor takes the forward one as hint.
    const dnnl::pooling_backward::desc backward_desc(algorithm, src_md, dst_md, stride, kernel,
                                                     padding, padding);
    backward_ = dnnl::pooling_backward(
        dnnl::pooling_backward::primitive_desc(backward_desc, ctx_->engine, pd));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::primitive primitive_;
  // Training only. Written by the const forward(): a training layer runs one pass at a time.
  dnnl::memory workspace_;
  dnnl::primitive backward_;
};

}  // namespace

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name) {
  return std::make_unique<DnnlPooling>(type, std::move(name));
}

}  // namespace cajal::engine
