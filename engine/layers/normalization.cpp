#include "engine/layers/normalization.h"

#include <cmath>
#include <utility>

#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"

namespace cajal::engine {

void NormalizationLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::group_norm) {
    params_.groups = params.integer("num_groups", 1);
    params_.channels = params.integer("num_channels", 1);
    if (params_.channels % params_.groups) {
      params.fail("num_groups", "a divisor of num_channels " + std::to_string(params_.channels),
                  std::to_string(params_.groups));
    }
  } else {
    params_.channels = params.integer("num_features", 1);
    params_.groups = params_.channels;
  }
  params_.eps = params.number("eps", 1e-5, 0.0);
  params_.affine = params.boolean("affine", type() != LayerType::instance_norm);
}

std::vector<WeightSpec> NormalizationLayer::weight_specs() const {
  const Dims c{params_.channels};
  std::vector<WeightSpec> specs;
  if (params_.affine) {
    specs = {{"weight", c}, {"bias", c}};
  }
  if (type() == LayerType::batch_norm) {
    specs.push_back({"running_mean", c});
    specs.push_back({"running_var", c});
  }
  return specs;
}

void NormalizationLayer::scale_shift(std::vector<float>& scale, std::vector<float>& shift) const {
  const auto count = static_cast<std::size_t>(params_.channels);
  scale.assign(count, 1.0f);
  shift.assign(count, 0.0f);
  for (std::size_t c = 0; c < count; ++c) {
    const double gamma = params_.affine ? weight("weight").values()[c] : 1.0;
    const double beta = params_.affine ? weight("bias").values()[c] : 0.0;
    const double s = gamma / std::sqrt(weight("running_var").values()[c] + params_.eps);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(beta - weight("running_mean").values()[c] * s);
  }
}

Dims NormalizationLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (type() == LayerType::batch_norm ? src[0].size() < 2 || src[0].size() > 5
                                      : src[0].size() < 3 || src[0].size() > 5) {
    fail("input dims", type() == LayerType::batch_norm ? "2 to 5 dims" : "3 to 5 dims",
         to_string(src[0]));
  }
  detail::check_channels(*this, src[0], params_.channels);
  return src[0];
}

namespace {

class DnnlNormalization final : public NormalizationLayer {
 public:
  using NormalizationLayer::NormalizationLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (type() == LayerType::batch_norm) {
      detail::run_plain(primitive_, *ctx_, *src[0], dst, args_);
      return;
    }
    // Statistics per [sample, group] by layer normalisation over a [N * G, C/G * spatial] view.
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(view_, ctx_->engine, const_cast<float*>(src[0]->data()))},
        {DNNL_ARG_DST, dnnl::memory(view_, ctx_->engine, dst.data())}};
    primitive_.execute(ctx_->stream, args);
    ctx_->stream.wait();
    if (params().affine) {
      apply_affine(dst);
    }
  }

 private:
  void apply_affine(Tensor& dst) const {
    const auto channels = params().channels;
    const auto plane = dst.size() / (dst.dim(0) * channels);
    const auto* gamma = weight("weight").data();
    const auto* beta = weight("bias").data();
    const auto rows = dst.dim(0) * channels;
    float* values = dst.data();
#pragma omp parallel for
    for (std::int64_t row = 0; row < rows; ++row) {
      const auto c = row % channels;
      float* p = values + row * plane;
      for (std::int64_t i = 0; i < plane; ++i) {
        p[i] = p[i] * gamma[c] + beta[c];
      }
    }
  }

  void build(const Context& context) override {
    ctx_ = context.impl();
    const auto eps = static_cast<float>(params().eps);
    const auto inference = dnnl::prop_kind::forward_inference;
    if (type() != LayerType::batch_norm) {
      const auto& dims = src_dims()[0];
      const auto rows = dims[0] * params().groups;
      view_ = detail::plain_desc({rows, element_count(dims) / rows});
      const dnnl::layer_normalization_forward::desc desc(inference, view_, eps,
                                                         dnnl::normalization_flags::none);
      primitive_ = dnnl::layer_normalization_forward(
          dnnl::layer_normalization_forward::primitive_desc(desc, ctx_->engine));
      return;
    }
    auto flags = dnnl::normalization_flags::use_global_stats;
    if (params().affine) {
      flags = flags | dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    }
    const dnnl::batch_normalization_forward::desc desc(inference, detail::plain_desc(src_dims()[0]),
                                                       eps, flags);
    const dnnl::batch_normalization_forward::primitive_desc pd(desc, ctx_->engine);
    const auto channel_md = detail::plain_desc({params().channels});
    const auto copy = [&](const char* role) {
      return detail::reorder_once(channel_md, weight(role).data(), channel_md, *ctx_);
    };
    args_ = {{DNNL_ARG_MEAN, copy("running_mean")}, {DNNL_ARG_VARIANCE, copy("running_var")}};
    if (params().affine) {
      args_.emplace(DNNL_ARG_SCALE, copy("weight"));
      args_.emplace(DNNL_ARG_SHIFT, copy("bias"));
    }
    primitive_ = dnnl::batch_normalization_forward(pd);
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::memory::desc view_;
  std::unordered_map<int, dnnl::memory> args_;
  dnnl::primitive primitive_;
};

}  // namespace

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name) {
  return std::make_unique<DnnlNormalization>(type, std::move(name));
}

}  // namespace cajal::engine
