#include "engine/layers/normalization.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
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
  if (type() == LayerType::batch_norm) {
    params_.momentum = params.number("momentum", 0.1);
    if (params_.momentum < 0.0 || params_.momentum > 1.0) {
      params.fail("momentum", "a number in [0, 1]", std::to_string(params_.momentum));
    }
  }
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

std::vector<std::string> NormalizationLayer::trainable_roles() const {
  if (!params_.affine) {
    return {};
  }
  return {"weight", "bias"};
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

void NormalizationLayer::update_running_stats(const std::vector<double>& mean,
                                              const std::vector<double>& var,
                                              std::int64_t count) const {
  CAJAL_CHECK(type() == LayerType::batch_norm && training()) << label() << ": running stats";
  const double m = params_.momentum;
  const double unbias =
      count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
  // A training forward() updates the running statistics, as PyTorch's does: they are weights of
  // this (non-const) layer, changed through its const forward() by design of the interface.
  auto& running_mean = const_cast<Tensor&>(weight("running_mean"));
  auto& running_var = const_cast<Tensor&>(weight("running_var"));
  for (std::size_t c = 0; c < mean.size(); ++c) {
    running_mean.values()[c] =
        static_cast<float>((1.0 - m) * running_mean.values()[c] + m * mean[c]);
    running_var.values()[c] =
        static_cast<float>((1.0 - m) * running_var.values()[c] + m * var[c] * unbias);
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
  if (type() == LayerType::batch_norm && training() && element_count(src[0]) == params_.channels) {
    fail("input dims", "more than one value per channel in training", to_string(src[0]));
  }
  return src[0];
}

namespace {

using Args = std::unordered_map<int, dnnl::memory>;

void add_into(Tensor& sum, const Tensor& part) {
  for (std::int64_t i = 0; i < sum.size(); ++i) {
    sum.data()[i] += part.data()[i];
  }
}

std::vector<double> to_double(const Tensor& t) {
  return {t.values().begin(), t.values().end()};
}

class DnnlNormalization final : public NormalizationLayer {
 public:
  using NormalizationLayer::NormalizationLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (type() == LayerType::batch_norm) {
      forward_batch_norm(*src[0], dst);
      return;
    }
    // Statistics per [sample, group] by layer normalisation over a [N * G, C/G * spatial] view.
    Args args{{DNNL_ARG_SRC, view(*src[0])}, {DNNL_ARG_DST, view(dst)}};
    if (training()) {
      args.emplace(DNNL_ARG_MEAN, detail::wrap(mean_, ctx_->engine));
      args.emplace(DNNL_ARG_VARIANCE, detail::wrap(var_, ctx_->engine));
    }
    primitive_.execute(ctx_->stream, args);
    ctx_->stream.wait();
    if (params().affine) {
      if (training()) {
        std::copy_n(dst.data(), dst.size(), normalized_.data());
      }
      apply_affine(dst);
    }
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (type() != LayerType::batch_norm && !training()) {
      fail("backward", "a training forward before it (set_training(true) before prepare)",
           "an inference layer");
    }
    if (!backward_) {
      build_backward();
    }
    if (type() == LayerType::batch_norm) {
      backward_batch_norm(*src[0], diff_dst, diff_src[0]);
    } else {
      backward_group_norm(*src[0], diff_dst, diff_src[0]);
    }
  }

 private:
  dnnl::memory view(const Tensor& t) const {
    return dnnl::memory(view_, ctx_->engine, const_cast<float*>(t.data()));
  }

  // Scale, shift and the statistics: the batch's in training (written by the primitive), the
  // running ones otherwise.
  Args batch_norm_args() const {
    const auto& engine = ctx_->engine;
    Args args;
    if (training()) {
      args = {{DNNL_ARG_MEAN, detail::wrap(mean_, engine)},
              {DNNL_ARG_VARIANCE, detail::wrap(var_, engine)}};
    } else {
      args = {{DNNL_ARG_MEAN, detail::wrap(weight("running_mean"), engine)},
              {DNNL_ARG_VARIANCE, detail::wrap(weight("running_var"), engine)}};
    }
    if (params().affine) {
      args.emplace(DNNL_ARG_SCALE, detail::wrap(weight("weight"), engine));
      args.emplace(DNNL_ARG_SHIFT, detail::wrap(weight("bias"), engine));
    }
    return args;
  }

  void forward_batch_norm(const Tensor& src, Tensor& dst) const {
    detail::run_plain(primitive_, *ctx_, src, dst, batch_norm_args());
    if (training()) {
      update_running_stats(to_double(mean_), to_double(var_), src.size() / params().channels);
    }
  }

  void backward_batch_norm(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src) {
    const auto& engine = ctx_->engine;
    Tensor scratch;
    if (diff_src == nullptr) {
      scratch = Tensor(src.dims());
      diff_src = &scratch;
    }
    auto args = batch_norm_args();  // v2.6 asks for the shift too, though it does not read it
    args.emplace(DNNL_ARG_SRC, detail::wrap(src, engine));
    args.emplace(DNNL_ARG_DIFF_DST, detail::wrap(diff_dst, engine));
    args.emplace(DNNL_ARG_DIFF_SRC, detail::wrap(*diff_src, engine));
    Tensor diff_scale({params().channels});
    Tensor diff_shift({params().channels});
    if (params().affine) {
      args.emplace(DNNL_ARG_DIFF_SCALE, detail::wrap(diff_scale, engine));
      args.emplace(DNNL_ARG_DIFF_SHIFT, detail::wrap(diff_shift, engine));
    }
    backward_.execute(ctx_->stream, args);
    ctx_->stream.wait();
    if (params().affine) {
      add_into(grad("weight"), diff_scale);
      add_into(grad("bias"), diff_shift);
    }
  }

  // The affine part by hand (oneDNN's layer normalisation has one scale per row of the view, not
  // per channel), the normalisation by layer_normalization_backward.
  void backward_group_norm(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src) {
    const Tensor* diff_normalized = &diff_dst;
    Tensor scaled;
    if (params().affine) {
      scaled = Tensor(diff_dst.dims());
      backward_affine(diff_dst, scaled);
      diff_normalized = &scaled;
    }
    if (diff_src == nullptr) {
      return;
    }
    const auto& engine = ctx_->engine;
    backward_.execute(ctx_->stream, {{DNNL_ARG_SRC, view(src)},
                                     {DNNL_ARG_MEAN, detail::wrap(mean_, engine)},
                                     {DNNL_ARG_VARIANCE, detail::wrap(var_, engine)},
                                     {DNNL_ARG_DIFF_DST, view(*diff_normalized)},
                                     {DNNL_ARG_DIFF_SRC, view(*diff_src)}});
    ctx_->stream.wait();
  }

  // y = x_hat * gamma[c] + beta[c]: d gamma += sum dy * x_hat, d beta += sum dy (each channel
  // summed in a fixed order, so the bytes do not depend on the threads), d x_hat = dy * gamma.
  void backward_affine(const Tensor& diff_dst, Tensor& diff_normalized) {
    const auto channels = params().channels;
    const auto batch = diff_dst.dim(0);
    const auto plane = diff_dst.size() / (batch * channels);
    const float* gamma = weight("weight").data();
    float* diff_gamma = grad("weight").data();
    float* diff_beta = grad("bias").data();
#pragma omp parallel for
    for (std::int64_t c = 0; c < channels; ++c) {
      double sum_scaled = 0.0;
      double sum = 0.0;
      for (std::int64_t n = 0; n < batch; ++n) {
        const auto offset = (n * channels + c) * plane;
        for (std::int64_t i = 0; i < plane; ++i) {
          const double dy = diff_dst.data()[offset + i];
          sum_scaled += dy * normalized_.data()[offset + i];
          sum += dy;
          diff_normalized.data()[offset + i] = static_cast<float>(dy * gamma[c]);
        }
      }
      diff_gamma[c] += static_cast<float>(sum_scaled);
      diff_beta[c] += static_cast<float>(sum);
    }
  }

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

  dnnl::normalization_flags batch_norm_flags() const {
    auto flags =
        training() ? dnnl::normalization_flags::none : dnnl::normalization_flags::use_global_stats;
    if (params().affine) {
      flags = flags | dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    }
    return flags;
  }

  void build(const Context& context) override {
    ctx_ = context.impl();
    backward_ = {};  // prepare() again (other dims or mode) builds it anew
    const auto eps = static_cast<float>(params().eps);
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const auto& dims = src_dims()[0];
    if (type() == LayerType::batch_norm) {
      view_ = detail::plain_desc(dims);
      const dnnl::batch_normalization_forward::desc desc(prop, view_, eps, batch_norm_flags());
      batch_norm_pd_ = dnnl::batch_normalization_forward::primitive_desc(desc, ctx_->engine);
      primitive_ = dnnl::batch_normalization_forward(batch_norm_pd_);
      stat_dims_ = {params().channels};
    } else {
      const auto rows = dims[0] * params().groups;
      view_ = detail::plain_desc({rows, element_count(dims) / rows});
      const dnnl::layer_normalization_forward::desc desc(prop, view_, eps,
                                                         dnnl::normalization_flags::none);
      layer_norm_pd_ = dnnl::layer_normalization_forward::primitive_desc(desc, ctx_->engine);
      primitive_ = dnnl::layer_normalization_forward(layer_norm_pd_);
      stat_dims_ = {rows};
      if (training() && params().affine) {
        normalized_ = Tensor(dims);
      }
    }
    if (training()) {
      mean_ = Tensor(stat_dims_);
      var_ = Tensor(stat_dims_);
      build_backward();
    }
  }

  // The forward primitive descriptor is the hint; no workspace (no fused ReLU).
  void build_backward() {
    const auto eps = static_cast<float>(params().eps);
    if (type() == LayerType::batch_norm) {
      const auto prop =
          params().affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data;
      const dnnl::batch_normalization_backward::desc desc(prop, view_, view_, eps,
                                                          batch_norm_flags());
      backward_ = dnnl::batch_normalization_backward(
          dnnl::batch_normalization_backward::primitive_desc(desc, ctx_->engine, batch_norm_pd_));
      return;
    }
    const dnnl::layer_normalization_backward::desc desc(dnnl::prop_kind::backward_data, view_,
                                                        view_, detail::plain_desc(stat_dims_), eps,
                                                        dnnl::normalization_flags::none);
    backward_ = dnnl::layer_normalization_backward(
        dnnl::layer_normalization_backward::primitive_desc(desc, ctx_->engine, layer_norm_pd_));
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  dnnl::memory::desc view_;
  Dims stat_dims_;
  dnnl::batch_normalization_forward::primitive_desc batch_norm_pd_;
  dnnl::layer_normalization_forward::primitive_desc layer_norm_pd_;
  dnnl::primitive primitive_;
  dnnl::primitive backward_;
  // Kept by a training forward for backward: the statistics ([C] for batch_norm, [N * G]
  // otherwise) and, for an affine group or instance norm, the normalised values.
  mutable Tensor mean_;
  mutable Tensor var_;
  mutable Tensor normalized_;
};

}  // namespace

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name) {
  return std::make_unique<DnnlNormalization>(type, std::move(name));
}

}  // namespace cajal::engine
