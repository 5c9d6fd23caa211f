#include "engine/layers/normalization.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/select.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/common.h"
#include "engine/layers/norm_layouts.h"

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

bool NormalizationLayer::fuse_activation(std::vector<float> slopes) {
  CAJAL_CHECK(!prepared()) << label() << ": fuse_activation after prepare";
  if (type() == LayerType::batch_norm || !slopes_.empty() ||
      std::ssize(slopes) != params_.channels) {
    return false;
  }
  slopes_ = std::move(slopes);
  return true;
}

bool NormalizationLayer::take_blocked(std::int64_t block) {
  if (!prepared() || training() || slopes_.empty() || params_.groups != params_.channels ||
      block_ != 1 || block <= 1 || block % 8 != 0 || params_.channels % block != 0 ||
      (src_dims()[0].size() != 4 && src_dims()[0].size() != 5)) {
    return false;
  }
  block_ = block;
  return true;
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

// Adds to sum[l] and sum_x[l], l = i % 4, the gradient g_i and g_i (x_i - mean) (x_i - mean in
// float, the products in double) of `count` values: g = dy, or with `relu` ReLU's gradient, dy
// where x * scale + shift (the forward's y, the same operations) is above 0 and 0 elsewhere.
// Four values at a time as vectors (the four lanes, in the order a scalar loop adds them);
// compiled for AVX2 too.
__attribute__((target_clones("avx2", "default"))) void gradient_sums(
    const float* x, const float* dy, std::int64_t count, float mean, bool relu, float scale,
    float shift, double* sum, double* sum_x) {
  using Float4 = float __attribute__((vector_size(16)));
  using Double4 = double __attribute__((vector_size(32)));
  Double4 s;
  Double4 sx;
  std::memcpy(&s, sum, sizeof s);
  std::memcpy(&sx, sum_x, sizeof sx);
  std::int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    Float4 xv;
    Float4 g;
    std::memcpy(&xv, x + i, sizeof xv);
    std::memcpy(&g, dy + i, sizeof g);
    if (relu) {
      g = xv * scale + shift > 0.0f ? g : Float4{};
    }
    const Double4 gd = __builtin_convertvector(g, Double4);
    s += gd;
    sx += gd * __builtin_convertvector(xv - mean, Double4);
  }
  std::memcpy(sum, &s, sizeof s);
  std::memcpy(sum_x, &sx, sizeof sx);
  for (; i < count; ++i) {
    const float g = relu && !(x[i] * scale + shift > 0.0f) ? 0.0f : dy[i];
    sum[0] += g;
    sum_x[0] += static_cast<double>(g) * (x[i] - mean);
  }
}

// Channel k's four lanes of a group's sums (norm_layouts.h), as the per-channel loops hold them.
std::array<double, 4> lanes_of(const detail::GroupSums& sums, int k) {
  return {sums.lane[0][k], sums.lane[1][k], sums.lane[2][k], sums.lane[3][k]};
}

// The mean and the biased variance of `count` values from add_moments' four lanes of sums.
std::pair<double, double> mean_and_variance(const std::array<double, 4>& sum,
                                            const std::array<double, 4>& squares, double count) {
  const double mean = ((sum[0] + sum[1]) + (sum[2] + sum[3])) / count;
  return {mean, std::max(0.0, ((squares[0] + squares[1]) + (squares[2] + squares[3])) / count -
                                  mean * mean)};
}

class DnnlNormalization final : public NormalizationLayer {
 public:
  using NormalizationLayer::NormalizationLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    if (type() == LayerType::batch_norm) {
      forward_batch_norm(*src[0], dst);
      return;
    }
    if (!fused_slopes().empty()) {
      if (channel_block() > 1) {
        normalize_and_activate_blocked(*src[0], dst);
      } else {
        normalize_and_activate(*src[0], dst);
      }
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

  bool take_layouts_in_training(std::int64_t in_block, std::int64_t out_block) override {
    const std::int64_t channels = params().channels;
    const auto valid = [&](std::int64_t block) {
      return block == 1 || (block > 0 && block % 8 == 0 && channels % block == 0);
    };
    if (type() != LayerType::batch_norm || !training() || !prepared() || channels % 8 != 0 ||
        !valid(in_block) || !valid(out_block)) {
      return false;
    }
    in_block_ = in_block;
    out_block_ = out_block;
    return true;
  }

  bool fuse_relu_in_training(bool relu) override {
    relu_ = relu && type() == LayerType::batch_norm && training() && prepared();
    return relu_;
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (type() != LayerType::batch_norm && !training()) {
      fail("backward", "a training forward before it (set_training(true) before prepare)",
           "an inference layer");
    }
    if (type() == LayerType::batch_norm) {
      backward_batch_norm(*src[0], diff_dst, diff_src[0]);
      return;
    }
    if (!backward_) {
      build_backward();
    }
    backward_group_norm(*src[0], diff_dst, diff_src[0]);
  }

 private:
  dnnl::memory view(const Tensor& t) const {
    return dnnl::memory(view_, ctx_->engine, const_cast<float*>(t.data()));
  }

  // Scale, shift and the running statistics (inference; training is by hand).
  Args batch_norm_args() const {
    const auto& engine = ctx_->engine;
    Args args{{DNNL_ARG_MEAN, detail::wrap(weight("running_mean"), engine)},
              {DNNL_ARG_VARIANCE, detail::wrap(weight("running_var"), engine)}};
    if (params().affine) {
      args.emplace(DNNL_ARG_SCALE, detail::wrap(weight("weight"), engine));
      args.emplace(DNNL_ARG_SHIFT, detail::wrap(weight("bias"), engine));
    }
    return args;
  }

  void forward_batch_norm(const Tensor& src, Tensor& dst) const {
    if (training()) {
      train_batch_norm(src, dst);
      return;
    }
    detail::run_plain(primitive_, *ctx_, src, dst, batch_norm_args());
  }

  // Each channel's values: `planes` runs of `plane` values, `stride` apart.
  struct ChannelRuns {
    std::int64_t planes, plane, stride;
  };
  ChannelRuns channel_runs(const Tensor& t) const {
    const std::int64_t channels = params().channels;
    const std::int64_t plane = t.size() / (t.dim(0) * channels);
    return {t.dim(0), plane, channels * plane};
  }

  // Batch normalisation in training by hand on the plain layout (oneDNN v2.6's is its ncsp
  // kernel here, about twice the time of the two passes below): per channel the mean and the
  // biased variance of the batch (sums in double, four lanes, in a fixed order), then
  // y = x * scale + shift, or max(y, 0) with a fused ReLU.
  void train_batch_norm(const Tensor& src, Tensor& dst) const {
    const std::int64_t channels = params().channels;
    const ChannelRuns runs = channel_runs(src);
    const double count = static_cast<double>(runs.planes * runs.plane);
    batch_mean_.assign(static_cast<std::size_t>(channels), 0.0);
    batch_var_.assign(static_cast<std::size_t>(channels), 0.0);
    batch_scale_.assign(static_cast<std::size_t>(channels), 0.0f);
    batch_shift_.assign(static_cast<std::size_t>(channels), 0.0f);
    // Channel c's statistics from its four lanes of sums; its scale and shift.
    const auto statistics = [&](std::int64_t c, const std::array<double, 4>& sum,
                                const std::array<double, 4>& squares) {
      const auto [mean, var] = mean_and_variance(sum, squares, count);
      const auto at = static_cast<std::size_t>(c);
      batch_mean_[at] = mean;
      batch_var_[at] = var;
      const double gamma = params().affine ? weight("weight").data()[c] : 1.0;
      const double beta = params().affine ? weight("bias").data()[c] : 0.0;
      const double inv_std = 1.0 / std::sqrt(var + params().eps);
      batch_scale_[at] = static_cast<float>(gamma * inv_std);
      batch_shift_[at] = static_cast<float>(beta - mean * gamma * inv_std);
    };
    if (by_groups()) {
      // On the linked layouts (norm_layouts.h), the same sums: each group of 8 channels' on a
      // thread, then the output by chunks of positions, all channels of each on one thread.
      const detail::NormLayout in = layout(src, in_block_);
      const detail::NormLayout out = layout(dst, out_block_);
      const std::int64_t chunks = chunk_count(in.positions);
#pragma omp parallel num_threads(ctx_->threads)
      {
#pragma omp for schedule(static)
        for (std::int64_t g = 0; g < channels / 8; ++g) {
          detail::GroupSums sum;
          detail::GroupSums squares;
          detail::group_moments(src.data(), in, g, sum, squares);
          for (int k = 0; k < 8; ++k) {
            statistics(8 * g + k, lanes_of(sum, k), lanes_of(squares, k));
          }
        }
#pragma omp for schedule(static)
        for (std::int64_t item = 0; item < in.samples * chunks; ++item) {
          const auto [first, last] = chunk_range(item % chunks, in.positions);
          for (std::int64_t g = 0; g < channels / 8; ++g) {
            detail::group_normalize(src.data(), in, dst.data(), out, g, item / chunks, first, last,
                                    batch_scale_.data() + 8 * g, batch_shift_.data() + 8 * g,
                                    relu_);
          }
        }
      }
      update_running_stats(batch_mean_, batch_var_, runs.planes * runs.plane);
      return;
    }
#pragma omp parallel for num_threads(ctx_->threads) schedule(static)
    for (std::int64_t c = 0; c < channels; ++c) {
      std::array<double, 4> sum{};
      std::array<double, 4> squares{};
      for (std::int64_t n = 0; n < runs.planes; ++n) {
        detail::add_moments(src.data() + n * runs.stride + c * runs.plane, runs.plane, sum.data(),
                            squares.data());
      }
      statistics(c, sum, squares);
      const float scale = batch_scale_[static_cast<std::size_t>(c)];
      const float shift = batch_shift_[static_cast<std::size_t>(c)];
      for (std::int64_t n = 0; n < runs.planes; ++n) {
        const float* x = src.data() + n * runs.stride + c * runs.plane;
        float* y = dst.data() + n * runs.stride + c * runs.plane;
        if (relu_) {
          for (std::int64_t i = 0; i < runs.plane; ++i) {
            y[i] = std::max(x[i] * scale + shift, 0.0f);
          }
          continue;
        }
        for (std::int64_t i = 0; i < runs.plane; ++i) {
          y[i] = x[i] * scale + shift;
        }
      }
    }
    update_running_stats(batch_mean_, batch_var_, runs.planes * runs.plane);
  }

  // normalize_and_activate on the layout [N, C / B, spatial, B] (take_blocked): each sample's
  // positions in chunks of a fixed size (so any thread count gives the same bytes), the moments
  // of each chunk on its own, then added per channel in chunk order.
  void normalize_and_activate_blocked(const Tensor& src, Tensor& dst) const {
    constexpr std::int64_t kChunkValues = 32768;
    const std::int64_t samples = src.dim(0);
    const std::int64_t channels = params().channels;
    const std::int64_t block = channel_block();
    const std::int64_t runs = samples * (channels / block);  // [spatial, B] each
    const std::int64_t positions = src.size() / (samples * channels);
    const std::int64_t chunk = std::max<std::int64_t>(1, kChunkValues / block);
    const std::int64_t chunks = (positions + chunk - 1) / chunk;
    const std::int64_t items = runs * chunks;
    std::vector<double> moments(static_cast<std::size_t>(items * 2 * block), 0.0);
    const auto each_item = [&](auto&& work) {
#pragma omp parallel for num_threads(ctx_->threads) schedule(static)
      for (std::int64_t item = 0; item < items; ++item) {
        const std::int64_t first = item % chunks * chunk;
        const std::int64_t offset = (item / chunks * positions + first) * block;
        work(item, offset, std::min(chunk, positions - first));
      }
    };
    each_item([&](std::int64_t item, std::int64_t offset, std::int64_t count) {
      double* sum = moments.data() + item * 2 * block;
      detail::add_block_moments(src.data() + offset, count, block, sum, sum + block);
    });
    std::vector<float> scale(static_cast<std::size_t>(runs * block));
    std::vector<float> shift(scale.size());
    for (std::int64_t run = 0; run < runs; ++run) {
      for (std::int64_t l = 0; l < block; ++l) {
        double sum = 0.0;
        double squares = 0.0;
        for (std::int64_t k = 0; k < chunks; ++k) {
          const double* m = moments.data() + (run * chunks + k) * 2 * block;
          sum += m[l];
          squares += m[block + l];
        }
        const double mean = sum / static_cast<double>(positions);
        const double var = std::max(0.0, squares / static_cast<double>(positions) - mean * mean);
        const double inv_std = 1.0 / std::sqrt(var + params().eps);
        const std::int64_t c = run % (channels / block) * block + l;
        const double gamma = params().affine ? weight("weight").data()[c] : 1.0;
        const double beta = params().affine ? weight("bias").data()[c] : 0.0;
        const auto at = static_cast<std::size_t>(run * block + l);
        scale[at] = static_cast<float>(gamma * inv_std);
        shift[at] = static_cast<float>(beta - mean * gamma * inv_std);
      }
    }
    each_item([&](std::int64_t item, std::int64_t offset, std::int64_t count) {
      const std::int64_t run = item / chunks;
      const std::int64_t c = run % (channels / block) * block;
      detail::scale_shift_slope_block(src.data() + offset, dst.data() + offset, count, block,
                                      scale.data() + run * block, shift.data() + run * block,
                                      fused_slopes().data() + c);
    });
  }

  // Instance or group normalisation in inference with its fused activation, by hand: per row of
  // the [N * G, C/G * spatial] view, the mean and the biased variance (sums in double, four
  // lanes, in a fixed order), then per channel y = x * scale + shift (the affine part folded in)
  // and the activation, while the row is still in cache.
  void normalize_and_activate(const Tensor& src, Tensor& dst) const {
    const std::int64_t channels = params().channels;
    const std::int64_t groups = params().groups;
    const std::int64_t plane = src.size() / (src.dim(0) * channels);
    const std::int64_t per_group = channels / groups;
    const std::int64_t row_size = per_group * plane;
    const std::vector<float>& slopes = fused_slopes();
#pragma omp parallel for num_threads(ctx_->threads) schedule(static)
    for (std::int64_t row = 0; row < src.dim(0) * groups; ++row) {
      const float* x = src.data() + row * row_size;
      float* y = dst.data() + row * row_size;
      std::array<double, 4> sum{};
      std::array<double, 4> squares{};
      detail::add_moments(x, row_size, sum.data(), squares.data());
      const auto [mean, var] = mean_and_variance(sum, squares, static_cast<double>(row_size));
      const double inv_std = 1.0 / std::sqrt(var + params().eps);
      for (std::int64_t k = 0; k < per_group; ++k) {
        const std::int64_t c = row % groups * per_group + k;
        const double gamma = params().affine ? weight("weight").data()[c] : 1.0;
        const double beta = params().affine ? weight("bias").data()[c] : 0.0;
        const auto scale = static_cast<float>(gamma * inv_std);
        const auto shift = static_cast<float>(beta - mean * gamma * inv_std);
        detail::scale_shift_slope(x + k * plane, y + k * plane, plane, scale, shift,
                                  slopes[static_cast<std::size_t>(c)]);
      }
    }
  }

  // Its gradient by hand: per channel the sums of dy and of dy (x - mean) (double, four lanes),
  // then dx = a dy + b x + c, the gradient of the normalisation with the batch's statistics
  // (training) or with the running ones, constants then (a layer prepared for inference: b and c
  // are 0). With a fused ReLU, dy is the gradient of max(y, 0): it counts where the forward's y
  // (recomputed from x, the same operations, so the same bits) was above 0, as ReLU's own
  // backward does, and is 0 elsewhere.
  void backward_batch_norm(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src) {
    if (by_groups()) {
      backward_batch_norm_by_groups(src, diff_dst, diff_src);
      return;
    }
    if (relu_) {
      backward_batch_norm_after<true>(src, diff_dst, diff_src);
    } else {
      backward_batch_norm_after<false>(src, diff_dst, diff_src);
    }
  }

  template <bool kRelu>
  void backward_batch_norm_after(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src) {
    const std::int64_t channels = params().channels;
    const ChannelRuns runs = channel_runs(src);
    const double count = static_cast<double>(runs.planes * runs.plane);
    if (!training()) {
      const auto& mean = weight("running_mean").values();
      const auto& var = weight("running_var").values();
      batch_mean_.assign(mean.begin(), mean.end());
      batch_var_.assign(var.begin(), var.end());
    }
    CAJAL_CHECK(batch_mean_.size() == static_cast<std::size_t>(channels))
        << label() << ": backward before a training forward";
    std::vector<double> diff_gamma(static_cast<std::size_t>(channels));
    std::vector<double> diff_beta(static_cast<std::size_t>(channels));
#pragma omp parallel for num_threads(ctx_->threads) schedule(static)
    for (std::int64_t c = 0; c < channels; ++c) {
      const double mean = batch_mean_[static_cast<std::size_t>(c)];
      const auto mean_f = static_cast<float>(mean);
      const float scale = kRelu ? batch_scale_[static_cast<std::size_t>(c)] : 0.0f;
      const float shift = kRelu ? batch_shift_[static_cast<std::size_t>(c)] : 0.0f;
      // dy, or ReLU's gradient from it (chosen by bits: with `?:`, GCC leaves the loops scalar).
      const auto grad = [&](const float* x, const float* dy, std::int64_t at) {
        return kRelu ? core::select_bits(x[at] * scale + shift > 0.0f, dy[at], 0.0f) : dy[at];
      };
      std::array<double, 4> dy_sum{};
      std::array<double, 4> dy_x_sum{};  // of dy (x - mean), x - mean in float
      for (std::int64_t n = 0; n < runs.planes; ++n) {
        gradient_sums(src.data() + n * runs.stride + c * runs.plane,
                      diff_dst.data() + n * runs.stride + c * runs.plane, runs.plane, mean_f, kRelu,
                      scale, shift, dy_sum.data(), dy_x_sum.data());
      }
      const auto [af, bf, cf] =
          gradient_constants(c, dy_sum, dy_x_sum, count, diff_gamma, diff_beta);
      if (diff_src == nullptr) {
        continue;
      }
      for (std::int64_t n = 0; n < runs.planes; ++n) {
        const float* x = src.data() + n * runs.stride + c * runs.plane;
        const float* dy = diff_dst.data() + n * runs.stride + c * runs.plane;
        float* dx = diff_src->data() + n * runs.stride + c * runs.plane;
        for (std::int64_t i = 0; i < runs.plane; ++i) {
          dx[i] = af * grad(x, dy, i) + (bf * x[i] + cf);
        }
      }
    }
    add_affine_gradients(diff_gamma, diff_beta);
  }

  // Channel c's weight gradients (into diff_gamma and diff_beta) from its four lanes of sums of
  // dy and of dy (x - mean), and the constants of dx = a dy + b x + c.
  std::array<float, 3> gradient_constants(std::int64_t c, const std::array<double, 4>& dy_sum,
                                          const std::array<double, 4>& dy_x_sum, double count,
                                          std::vector<double>& diff_gamma,
                                          std::vector<double>& diff_beta) const {
    const auto at = static_cast<std::size_t>(c);
    const double mean = batch_mean_[at];
    const double sum_dy = (dy_sum[0] + dy_sum[1]) + (dy_sum[2] + dy_sum[3]);
    const double sum_dy_x = (dy_x_sum[0] + dy_x_sum[1]) + (dy_x_sum[2] + dy_x_sum[3]);
    const double inv_std = 1.0 / std::sqrt(batch_var_[at] + params().eps);
    diff_gamma[at] = sum_dy_x * inv_std;
    diff_beta[at] = sum_dy;
    const double gamma = params().affine ? weight("weight").data()[c] : 1.0;
    const double a = gamma * inv_std;
    const double b = training() ? -a * inv_std * inv_std * sum_dy_x / count : 0.0;
    return {static_cast<float>(a), static_cast<float>(b),
            static_cast<float>(training() ? -a * sum_dy / count - b * mean : 0.0)};
  }

  void add_affine_gradients(const std::vector<double>& diff_gamma,
                            const std::vector<double>& diff_beta) {
    if (!params().affine) {
      return;
    }
    for (std::size_t c = 0; c < diff_gamma.size(); ++c) {
      grad("weight").data()[c] += static_cast<float>(diff_gamma[c]);
      grad("bias").data()[c] += static_cast<float>(diff_beta[c]);
    }
  }

  // backward_batch_norm_after by 8 channels on the linked layouts (take_layouts_in_training): x
  // and dx in the input's, dy in the output's; the same sums in the same order, the same bytes.
  void backward_batch_norm_by_groups(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src) {
    const std::int64_t channels = params().channels;
    const detail::NormLayout in = layout(src, in_block_);
    const detail::NormLayout dl = layout(diff_dst, out_block_);
    const auto count = static_cast<double>(in.samples * in.positions);
    CAJAL_CHECK(training() && batch_mean_.size() == static_cast<std::size_t>(channels))
        << label() << ": backward before a training forward";
    std::vector<double> diff_gamma(static_cast<std::size_t>(channels));
    std::vector<double> diff_beta(static_cast<std::size_t>(channels));
    std::vector<float> a(static_cast<std::size_t>(channels));
    std::vector<float> b(a.size());
    std::vector<float> c(a.size());
    const std::int64_t chunks = chunk_count(in.positions);
    // As the forward: the sums by groups of channels, dx by chunks of positions.
#pragma omp parallel num_threads(ctx_->threads)
    {
#pragma omp for schedule(static)
      for (std::int64_t g = 0; g < channels / 8; ++g) {
        std::array<float, 8> mean{};
        for (int k = 0; k < 8; ++k) {
          mean[static_cast<std::size_t>(k)] =
              static_cast<float>(batch_mean_[static_cast<std::size_t>(8 * g + k)]);
        }
        detail::GroupSums dy_sum;
        detail::GroupSums dy_x_sum;
        detail::group_gradient_sums(src.data(), in, diff_dst.data(), dl, g, mean.data(),
                                    batch_scale_.data() + 8 * g, batch_shift_.data() + 8 * g, relu_,
                                    dy_sum, dy_x_sum);
        for (int k = 0; k < 8; ++k) {
          const auto at = static_cast<std::size_t>(8 * g + k);
          const auto [ak, bk, ck] = gradient_constants(
              8 * g + k, lanes_of(dy_sum, k), lanes_of(dy_x_sum, k), count, diff_gamma, diff_beta);
          a[at] = ak;
          b[at] = bk;
          c[at] = ck;
        }
      }
      if (diff_src != nullptr) {
#pragma omp for schedule(static)
        for (std::int64_t item = 0; item < in.samples * chunks; ++item) {
          const auto [first, last] = chunk_range(item % chunks, in.positions);
          for (std::int64_t g = 0; g < channels / 8; ++g) {
            detail::group_gradient(src.data(), in, diff_dst.data(), dl, diff_src->data(), g,
                                   item / chunks, first, last, batch_scale_.data() + 8 * g,
                                   batch_shift_.data() + 8 * g, relu_, a.data() + 8 * g,
                                   b.data() + 8 * g, c.data() + 8 * g);
          }
        }
      }
    }
    add_affine_gradients(diff_gamma, diff_beta);
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
    auto flags = dnnl::normalization_flags::use_global_stats;
    if (params().affine) {
      flags = flags | dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    }
    return flags;
  }

  void build(const Context& context) override {
    ctx_ = context.impl();
    forget_blocked();  // the Net links anew after each prepare
    backward_ = {};    // prepare() again (other dims or mode) builds it anew
    relu_ = false;     // and the Net fuses a ReLU anew
    in_block_ = 1;     // and links the layouts anew
    out_block_ = 1;
    const auto eps = static_cast<float>(params().eps);
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const auto& dims = src_dims()[0];
    CAJAL_CHECK(fused_slopes().empty() || !training())
        << label() << ": a fused activation runs only in inference";
    if (!fused_slopes().empty()) {
      return;  // normalize_and_activate, by hand
    }
    if (type() == LayerType::batch_norm) {
      if (training()) {
        return;  // train_batch_norm and backward_batch_norm, by hand
      }
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

  // Group and instance norm; the forward primitive descriptor is the hint.
  void build_backward() {
    const auto eps = static_cast<float>(params().eps);
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
  // batch_norm: the last training forward's batch statistics, per channel, and the scale and
  // shift it applied.
  mutable std::vector<double> batch_mean_;
  mutable std::vector<double> batch_var_;
  mutable std::vector<float> batch_scale_;
  mutable std::vector<float> batch_shift_;
  bool relu_ = false;  // fuse_relu_in_training
  // take_layouts_in_training: the input's (and its gradient's) and the output's (and its
  // gradient's) channel blocks; 1 is PyTorch's layout.
  std::int64_t in_block_ = 1;
  std::int64_t out_block_ = 1;
  // Positions per chunk of the value-by-value passes on them (16 channels: 256 KiB): how many
  // chunks a sample has, and chunk i's positions [first, last).
  static constexpr std::int64_t kChunkPositions = 4096;
  static std::int64_t chunk_count(std::int64_t positions) {
    return (positions + kChunkPositions - 1) / kChunkPositions;
  }
  static std::pair<std::int64_t, std::int64_t> chunk_range(std::int64_t i, std::int64_t positions) {
    return {i * kChunkPositions, std::min((i + 1) * kChunkPositions, positions)};
  }
  bool by_groups() const {
    return in_block_ > 1 || out_block_ > 1;
  }
  detail::NormLayout layout(const Tensor& t, std::int64_t block) const {
    return {.samples = t.dim(0),
            .channels = params().channels,
            .positions = t.size() / (t.dim(0) * params().channels),
            .block = block};
  }
};

}  // namespace

std::unique_ptr<Layer> make_normalization(LayerType type, std::string name) {
  return std::make_unique<DnnlNormalization>(type, std::move(name));
}

}  // namespace cajal::engine
