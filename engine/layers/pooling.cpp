#include "engine/layers/pooling.h"

#include <utility>

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
    detail::run_plain(primitive_, *ctx_, *src[0], dst);
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
    const dnnl::pooling_forward::desc desc(
        dnnl::prop_kind::forward_inference, algorithm, detail::plain_desc(src_dims()[0]),
        detail::plain_desc(dst_dims()), stride, kernel, padding, padding);
    primitive_ = dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(desc, ctx_->engine));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_pooling(LayerType type, std::string name) {
  return std::make_unique<DnnlPooling>(type, std::move(name));
}

}  // namespace cajal::engine
