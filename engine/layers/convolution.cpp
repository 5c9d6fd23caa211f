#include "engine/layers/convolution.h"

#include <immintrin.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/select.h"
#include "engine/detail/dnnl_util.h"
#include "engine/layers/blocked_weight_gradient.h"
#include "engine/layers/common.h"
#include "engine/layers/doubling.h"
#include "engine/layers/inner_product.h"
#include "engine/layers/normalization.h"
#include "engine/layers/pointwise.h"
#include "engine/layers/pooling.h"
#include "engine/layers/stem.h"
#include "engine/layers/unpool.h"

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

Dims ConvolutionLayer::convolved_dims(const Dims& src) const {
  Dims dst{src[0], params_.out_channels};
  for (std::size_t i = 0; i < params_.kernel_size.size(); ++i) {
    const auto extent = params_.dilation[i] * (params_.kernel_size[i] - 1) + 1;
    const auto in = src[i + 2];
    const auto out = transposed() ? (in - 1) * params_.stride[i] - 2 * params_.padding[i] + extent +
                                        params_.output_padding[i]
                                  : (in + 2 * params_.padding[i] - extent) / params_.stride[i] + 1;
    if (out < 1 || (!transposed() && in + 2 * params_.padding[i] < extent)) {
      fail("input dims " + to_string(src), "a spatial size the kernel fits in",
           "an output size of " + std::to_string(out) + " on axis " + std::to_string(i + 2));
    }
    dst.push_back(out);
  }
  return dst;
}

Dims ConvolutionLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, adds_residual() ? 2 : 1);
  detail::check_rank(*this, src[0], params_.kernel_size.size() + 2);
  detail::check_channels(*this, src[0], params_.in_channels);
  Dims dst = convolved_dims(src[0]);
  if (adds_residual() && src[1] != dst) {
    fail("residual dims", to_string(dst), to_string(src[1]));
  }
  if (pool_) {
    for (std::size_t i = 0; i < pool_->kernel.size(); ++i) {
      if (dst[i + 2] < pool_->kernel[i]) {
        fail("input dims " + to_string(src[0]), "a spatial size the fused pooling's kernel fits in",
             "a convolution output of " + to_string(dst));
      }
      dst[i + 2] /= pool_->kernel[i];
    }
  }
  return dst;
}

std::int64_t ConvolutionLayer::flops() const {
  // Every (input voxel of a transposed one, or output voxel, and kernel tap) is one multiply-add
  // per channel pair of its group.
  const Dims voxels = transposed() ? src_dims()[0] : convolved_dims(src_dims()[0]);
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

void ConvolutionLayer::copy_plain(const Tensor& /*blob*/, float* /*plain*/) const {
  CAJAL_CHECK(false) << label() << ": copy_plain without a blocked link";
}

namespace {
bool thin(const ConvolutionParams& p, bool transposed, const std::vector<PostOp>& post_ops,
          bool inference);
}  // namespace

bool ConvolutionLayer::fuse_pool(LayerType type, const Dims& kernel, const Dims& stride,
                                 const Dims& padding) {
  CAJAL_CHECK(!prepared()) << label() << ": fuse_pool after prepare";
  const bool tanh_only = std::all_of(post_ops_.begin(), post_ops_.end(),
                                     [](const PostOp& op) { return op.type == LayerType::tanh; });
  if (pool_ || transposed() || !thin(params_, false, post_ops_, false) || !tanh_only ||
      (type != LayerType::max_pool && type != LayerType::avg_pool) ||
      kernel.size() != params_.kernel_size.size() || stride != kernel ||
      padding != Dims(kernel.size(), 0)) {
    return false;
  }
  pool_ = FusedPool{type, kernel};
  return true;
}

namespace {

// The oneDNN primitives of a convolution or of a transposed one (deconvolution).
struct DirectKinds {
  using Forward = dnnl::convolution_forward;
  using BackwardData = dnnl::convolution_backward_data;
  using BackwardWeights = dnnl::convolution_backward_weights;
  static constexpr auto algorithm = dnnl::algorithm::convolution_direct;
};
struct TransposedKinds {
  using Forward = dnnl::deconvolution_forward;
  using BackwardData = dnnl::deconvolution_backward_data;
  using BackwardWeights = dnnl::deconvolution_backward_weights;
  static constexpr auto algorithm = dnnl::algorithm::deconvolution_direct;
};

// The three values of a 3D convolution's parameter (D, H, W).
std::array<std::int64_t, 3> axes_of(const Dims& values) {
  CAJAL_CHECK(values.size() == 3) << "a 3D parameter of " << values.size() << " values";
  return {values[0], values[1], values[2]};
}

// A convolution whose weight gradient is summed directly (direct_weight_gradient) rather than by
// oneDNN: with 1 or 2 input channels oneDNN 2.6 has no blocked backward-weights kernel here and
// falls back to a gemm path that took 2.4 s a step for a 1->8 3x3x3 stem on a 16x1x32^3 batch.
bool sums_weight_gradient_directly(const ConvolutionParams& p, bool transposed) {
  return !transposed && p.groups == 1 && p.in_channels <= 2;
}

// A convolution whose input's gradient is computed as a forward convolution of the output's
// gradient by the flipped weights (flipped_weights), padded by kernel - 1 - padding: stride 1, no
// dilation or groups, padding at most kernel - 1, 3D. Taken where oneDNN v2.6 runs its AVX-512
// kernels and the output has one block of 16 channels (the input whole blocks): its forward
// kernel is faster there than its backward-data one, 16 -> 16 3x3x3 at 64^3 7.9 ms against 10.3
// and 32 -> 16 15.1 against 15.8 (bench/train's 3D U-Net); with more output channels, as fast or
// slightly slower (64 -> 32 at 32^3: 7.8 against 7.6). And where the output has 8 channels, on the
// layouts the forward kernel picks (channels last): the backward-data kernel pads them to a block
// of 16, the forward one does not (the CT model's 8 -> 8 and 16 -> 8 at 2x32x96^2: 10.0 and 10.5
// ms against 23.9 and 23.6).
bool gradient_by_forward(const ConvolutionParams& p, bool transposed) {
  const auto rank = p.kernel_size.size();
  if (transposed || p.groups != 1 || rank != 3 || p.stride != Dims(rank, 1) ||
      p.dilation != Dims(rank, 1)) {
    return false;
  }
  for (std::size_t a = 0; a < rank; ++a) {
    if (p.padding[a] > p.kernel_size[a] - 1) {
      return false;
    }
  }
  return true;
}

// Weights [OC, IC, K...] as [IC, OC, K...] with each kernel reversed along every axis: the
// convolution whose forward is gradient_by_forward's data pass.
Tensor flipped_weights(const Tensor& w) {
  const std::int64_t out = w.dim(0);
  const std::int64_t in = w.dim(1);
  const std::int64_t taps = w.size() / (out * in);
  Dims dims = w.dims();
  std::swap(dims[0], dims[1]);
  Tensor flipped(dims);
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t i = 0; i < in; ++i) {
      const float* from = w.data() + (o * in + i) * taps;
      float* to = flipped.data() + (i * out + o) * taps;
      for (std::int64_t t = 0; t < taps; ++t) {
        to[t] = from[taps - 1 - t];
      }
    }
  }
  return flipped;
}

// unpool_convolution's reach (detail::unpool_convolution, unpool.h).
constexpr std::int64_t kUnpoolMaxOutChannels = 16;
constexpr std::int64_t kUnpoolMaxKernel = 4;  // along W: its accumulators

// A transposed convolution that unpool_convolution runs: kernel equal to stride on every axis, no
// padding, dilation or groups, at most `max_out_channels` output channels.
bool unpools(const ConvolutionParams& p, bool transposed,
             std::int64_t max_out_channels = kUnpoolMaxOutChannels) {
  const auto rank = p.kernel_size.size();
  return transposed && p.out_channels <= max_out_channels &&
         p.kernel_size.back() <= kUnpoolMaxKernel && p.groups == 1 && (rank == 2 || rank == 3) &&
         p.stride == p.kernel_size && p.padding == Dims(rank, 0) &&
         p.output_padding == Dims(rank, 0) && p.dilation == Dims(rank, 1);
}

// A convolution whose kernel covers its whole input (no padding, dilation or groups; the output
// one sample per axis): an inner product of the input with each output channel's weights.
bool covers_input(const ConvolutionParams& p, bool transposed, const Dims& src) {
  const auto rank = p.kernel_size.size();
  return !transposed && p.groups == 1 && p.padding == Dims(rank, 0) &&
         p.dilation == Dims(rank, 1) && Dims(src.begin() + 2, src.end()) == p.kernel_size;
}

// A convolution whose kernel is one voxel (stride 1, no padding, dilation or groups) into at most
// detail::kPointwiseMaxOutChannels channels: a U-Net's last layer, run in training by
// detail::pointwise_forward and its gradients.
bool pointwise(const ConvolutionParams& p, bool transposed) {
  const auto rank = p.kernel_size.size();
  return !transposed && p.groups == 1 && (rank == 2 || rank == 3) &&
         p.kernel_size == Dims(rank, 1) && p.stride == Dims(rank, 1) &&
         p.padding == Dims(rank, 0) && p.dilation == Dims(rank, 1) &&
         p.out_channels <= detail::kPointwiseMaxOutChannels;
}

// A transposed convolution that doubles every spatial size with stride 2: 3 for a 3-tap kernel
// with padding and output padding 1 (as MONAI's UNet up-samples), 2 for a 2-tap kernel without
// padding (nnU-Net's), else 0. In inference it runs as ordinary convolutions, one per phase of
// the output or one for all, interleaved afterwards (sub-pixel convolution; oneDNN v2.6 has only a
// gemm kernel for the transposed one).
std::int64_t subpixel_kernel(const ConvolutionParams& p, bool transposed) {
  const auto rank = p.kernel_size.size();
  if (!transposed || p.groups != 1 || (rank != 2 && rank != 3) || p.stride != Dims(rank, 2) ||
      p.dilation != Dims(rank, 1)) {
    return 0;
  }
  if (p.kernel_size == Dims(rank, 3) && p.padding == Dims(rank, 1) &&
      p.output_padding == Dims(rank, 1)) {
    return 3;
  }
  if (p.kernel_size == Dims(rank, 2) && p.padding == Dims(rank, 0) &&
      p.output_padding == Dims(rank, 0)) {
    return 2;
  }
  return 0;
}

// With a 3-tap kernel, output sample 2m + a along an axis reads input sample m with kernel tap 1
// when a = 0, and samples m and m + 1 (0 past the end) with taps 2 and 0 when a = 1: phase a's
// convolution has a + 1 taps along that axis and a samples of zero padding after the end. With a
// 2-tap kernel it reads sample m with tap a. Phase p's bit for the last axis (W) is its lowest:
// p = (a_d * 2 + a_h) * 2 + a_w, 2D without a_d.
std::int64_t phase_bit(std::int64_t phase, std::size_t axis, std::size_t rank) {
  return (phase >> (rank - 1 - axis)) & 1;
}

// Phase `phase`'s weight [OC, IC, taps...] from the transposed convolution's
// [IC, OC, K, K(, K)], K = `kernel` (3 or 2).
Tensor phase_weights(const Tensor& w, std::int64_t phase, std::size_t rank, std::int64_t kernel) {
  const std::int64_t ic_count = w.dim(0);
  const std::int64_t oc_count = w.dim(1);
  Dims dims{oc_count, ic_count};
  std::int64_t taps = 1;
  std::int64_t volume = 1;
  for (std::size_t axis = 0; axis < rank; ++axis) {
    dims.push_back(kernel == 3 ? phase_bit(phase, axis, rank) + 1 : 1);
    taps *= dims.back();
    volume *= kernel;
  }
  Tensor out(dims);
  for (std::int64_t t = 0; t < taps; ++t) {
    // Tap t's kernel index, axis by axis from the last.
    std::int64_t k = 0;
    std::int64_t scale = 1;
    std::int64_t rest = t;
    for (std::size_t axis = rank; axis-- > 0;) {
      const std::int64_t count = dims[2 + axis];
      const std::int64_t index = rest % count;
      rest /= count;
      const std::int64_t tap =
          kernel == 2 ? phase_bit(phase, axis, rank) : (count == 1 ? 1 : 2 - 2 * index);
      k += tap * scale;
      scale *= kernel;
    }
    for (std::int64_t oc = 0; oc < oc_count; ++oc) {
      for (std::int64_t ic = 0; ic < ic_count; ++ic) {
        out.data()[(oc * ic_count + ic) * taps + t] = w.data()[(ic * oc_count + oc) * volume + k];
      }
    }
  }
  return out;
}

// All phases' weights in one [2^rank * OC, IC, T, T(, T)] (phase p's output channels at p * OC),
// for one convolution with T = K - 1 taps along every axis (and, for K = 3, a sample of zero
// padding after the end): a phase with one tap along an axis where T = 2 reads the first, the
// second is 0.
Tensor combined_phase_weights(const Tensor& w, std::size_t rank, std::int64_t kernel) {
  const std::int64_t ic_count = w.dim(0);
  const std::int64_t oc_count = w.dim(1);
  const std::int64_t phases = std::int64_t{1} << rank;
  const std::int64_t width = kernel - 1;
  Dims dims{phases * oc_count, ic_count};
  dims.insert(dims.end(), rank, width);
  Tensor out(dims);
  const std::int64_t taps_out = out.size() / (phases * oc_count * ic_count);
  for (std::int64_t phase = 0; phase < phases; ++phase) {
    const Tensor part = phase_weights(w, phase, rank, kernel);
    const std::int64_t taps = part.size() / (oc_count * ic_count);
    for (std::int64_t row = 0; row < oc_count * ic_count; ++row) {
      for (std::int64_t t = 0; t < taps; ++t) {
        // Tap t's index along each axis, the same in the combined kernel.
        std::int64_t at = 0;
        std::int64_t rest = t;
        std::int64_t scale = 1;
        for (std::size_t axis = rank; axis-- > 0;) {
          const std::int64_t count = part.dim(static_cast<int>(2 + axis));
          at += rest % count * scale;
          rest /= count;
          scale *= width;
        }
        out.data()[(phase * oc_count * ic_count + row) * taps_out + at] =
            part.data()[row * taps + t];
      }
    }
  }
  return out;
}

// The layout [N, C / block, spatial..., block] that `desc` is for a tensor of these dims, and
// its block: channels last (block C), nC[d]hw16c or 8c (16 or 8); block 0 for any other layout.
std::pair<dnnl::memory::format_tag, std::int64_t> blocked_layout(const dnnl::memory::desc& desc,
                                                                 const Dims& dims) {
  using tag = dnnl::memory::format_tag;
  if (dims.size() != 4 && dims.size() != 5) {
    return {tag::undef, 0};
  }
  const bool three = dims.size() == 5;
  const std::array<std::pair<tag, std::int64_t>, 3> layouts{
      {{three ? tag::ndhwc : tag::nhwc, dims[1]},
       {three ? tag::nCdhw16c : tag::nChw16c, 16},
       {three ? tag::nCdhw8c : tag::nChw8c, 8}}};
  for (const auto& [layout, block] : layouts) {
    if (dims[1] % block == 0 && desc == detail::tagged_desc(dims, layout)) {
      return {layout, block};
    }
  }
  return {tag::undef, 0};
}

// Channels per block of the layout oneDNN's direct convolutions run fastest on here: 16 where it
// runs its AVX-512 kernels (with blocks of 8 it takes its AVX2 ones, at half their speed), else 8.
std::int64_t native_channel_block() {
  return detail::onednn_runs_avx512() ? 16 : 8;
}

// The 16 x 16 floats of `r` transposed: r[j] becomes what was lane j of each. (The shuffles under
// a full mask: GCC 12 takes the unmasked ones' undefined pass-through for uninitialised.)
__attribute__((target("avx512f"), always_inline)) inline void transpose16(__m512 (&r)[16]) {
  constexpr __mmask16 kAll16 = 0xffff;
  constexpr __mmask8 kAll8 = 0xff;
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_maskz_unpacklo_ps(kAll16, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll16, r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]);
    const __m512d b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(kAll8, b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(kAll8, b, d));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_maskz_shuffle_f32x4(kAll16, r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_maskz_shuffle_f32x4(kAll16, r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_maskz_shuffle_f32x4(kAll16, t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_maskz_shuffle_f32x4(kAll16, t[j], t[j + 8], 0xdd);
  }
}

// One row pair of interleave_pair with blocks of 16 channels: 8 samples of each phase, laid side
// by side in output order (2w, 2w + 1, ...), are by one 16 x 16 transpose the next 16 values of
// 16 output rows; the rest one by one. `rows[l]` is channel l's output row.
__attribute__((target("avx512f"))) void interleave_rows16(const float* even, const float* odd,
                                                          float* const (&rows)[16],
                                                          std::int64_t w_count) {
  constexpr std::int64_t kBlock = 16;
  std::int64_t w = 0;
  for (; w + 8 <= w_count; w += 8) {
    __m512 r[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      r[2 * i] = _mm512_loadu_ps(even + (w + i) * kBlock);
      r[2 * i + 1] = _mm512_loadu_ps(odd + (w + i) * kBlock);
    }
    transpose16(r);
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) {
      _mm512_storeu_ps(rows[l] + 2 * w, r[l]);
    }
  }
  for (; w < w_count; ++w) {
    for (int l = 0; l < 16; ++l) {
      rows[l][2 * w] = even[w * kBlock + l];
      rows[l][2 * w + 1] = odd[w * kBlock + l];
    }
  }
}

// The output rows (2d + a, 2h + b) of y [N, OC, 2D, 2H, 2W] (2D: a = 0, no D) from phases
// (a, b, 0) and (a, b, 1), each as its convolution writes it: [OC / block, D, H, W, block] for a
// sample, `sample_stride` floats apart, OC a multiple of `block`. Each row is written whole, in
// order: sample 2w from `even`, 2w + 1 from `odd`.
void interleave_pair(const float* even, const float* odd, std::int64_t sample_stride,
                     std::int64_t a, std::int64_t b, Tensor& y, std::size_t rank,
                     std::int64_t block, int threads) {
  const std::int64_t n_count = y.dim(0);
  const std::int64_t oc_count = y.dim(1);
  const std::int64_t od = rank == 3 ? y.dim(2) : 1;
  const std::int64_t oh = y.dim(static_cast<int>(rank));
  const std::int64_t ow = y.dim(static_cast<int>(rank) + 1);
  const std::int64_t d_count = rank == 3 ? od / 2 : 1;
  const std::int64_t h_count = oh / 2;
  const std::int64_t w_count = ow / 2;
  const std::int64_t oc_blocks = oc_count / block;
  float* out = y.data();
  const bool transposed = block == 16 && detail::avx512_kernels();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t nbd = 0; nbd < n_count * oc_blocks * d_count; ++nbd) {
    const std::int64_t n = nbd / (oc_blocks * d_count);
    const std::int64_t cb = nbd / d_count % oc_blocks;
    const std::int64_t d = nbd % d_count;
    const std::int64_t at = n * sample_stride + ((cb * d_count + d) * h_count) * w_count * block;
    for (std::int64_t h = 0; h < h_count; ++h) {
      const float* e = even + at + h * w_count * block;
      const float* o = odd + at + h * w_count * block;
      if (transposed) {
        float* rows[16];
        for (std::int64_t l = 0; l < 16; ++l) {
          rows[l] =
              out + ((n * oc_count + cb * block + l) * od + 2 * d + a) * oh * ow + (2 * h + b) * ow;
        }
        interleave_rows16(e, o, rows, w_count);
        continue;
      }
      for (std::int64_t l = 0; l < block; ++l) {
        float* row =
            out + ((n * oc_count + cb * block + l) * od + 2 * d + a) * oh * ow + (2 * h + b) * ow;
        for (std::int64_t w = 0; w < w_count; ++w) {
          row[2 * w] = e[w * block + l];
          row[2 * w + 1] = o[w * block + l];
        }
      }
    }
  }
}

// Phase `phase`, as its convolution writes it (blocked by `block` channels, 8 or 16:
// [N, OC / block, D, H, W, block], OC rounded up to the block, 2D without D), into its samples
// of y [N, OC, 2D, 2H, 2W]: a voxel's lanes are output channels, each written along its own row.
// `phase` < 0: every phase, phase p's channels at p * OC (combined_phase_weights).
void interleave_phase(const float* values, std::int64_t phase, Tensor& y, std::size_t rank,
                      std::int64_t block, int threads) {
  constexpr std::int64_t kMaxBlock = 16;
  CAJAL_CHECK(block == 8 || block == kMaxBlock) << "interleave_phase: a block of " << block;
  const std::int64_t n_count = y.dim(0);
  const std::int64_t oc_count = y.dim(1);
  const std::int64_t od = rank == 3 ? y.dim(2) : 1;
  const std::int64_t oh = y.dim(static_cast<int>(rank));
  const std::int64_t ow = y.dim(static_cast<int>(rank) + 1);
  const std::int64_t d_count = rank == 3 ? od / 2 : 1;
  const std::int64_t h_count = oh / 2;
  const std::int64_t w_count = ow / 2;
  const std::int64_t channels = phase < 0 ? (oc_count << rank) : oc_count;
  const std::int64_t blocks = (channels + block - 1) / block;
  float* out = y.data();
  if (phase < 0 && oc_count % block == 0) {
    // Every phase at once, each output row written whole, in order, from the two phases that
    // share it (written phase by phase, every other value of each row at a time, each of its
    // cache lines went to memory twice; 7 % of the 2D U-Net's forward).
    const std::int64_t block_values = (oc_count / block) * d_count * h_count * w_count * block;
    for (std::int64_t a = 0; a < (rank == 3 ? 2 : 1); ++a) {
      for (std::int64_t b = 0; b < 2; ++b) {
        const std::int64_t p0 = (rank == 3 ? a << 2 : 0) | b << 1;
        const float* even = values + p0 * block_values;
        interleave_pair(even, even + block_values, blocks * d_count * h_count * w_count * block, a,
                        b, y, rank, block, threads);
      }
    }
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t nbd = 0; nbd < n_count * blocks * d_count; ++nbd) {
    const std::int64_t nb = nbd / d_count;
    const std::int64_t d = nbd % d_count;
    const std::int64_t n = nb / blocks;
    const std::int64_t cb = nb % blocks;
    const std::int64_t lanes = std::min(block, channels - cb * block);
    std::array<float*, kMaxBlock> lane_row{};  // each lane's output channel, at (2d + a, b, c)
    for (std::int64_t l = 0; l < lanes; ++l) {
      const std::int64_t channel = cb * block + l;
      const std::int64_t p = phase < 0 ? channel / oc_count : phase;
      const std::int64_t a = rank == 3 ? phase_bit(p, 0, rank) : 0;
      const std::int64_t b = phase_bit(p, rank - 2, rank);
      const std::int64_t c = phase_bit(p, rank - 1, rank);
      lane_row[static_cast<std::size_t>(l)] =
          out + ((n * oc_count + channel % oc_count) * od + 2 * d + a) * oh * ow + b * ow + c;
    }
    const float* v = values + nbd * h_count * w_count * block;
    for (std::int64_t h = 0; h < h_count; ++h) {
      for (std::int64_t w = 0; w < w_count; ++w, v += block) {
        for (std::int64_t l = 0; l < lanes; ++l) {
          lane_row[static_cast<std::size_t>(l)][2 * h * ow + 2 * w] = v[l];
        }
      }
    }
  }
}

// A convolution's input and output sizes and its parameters along D, H and W (2D as 3D with
// depth 1, no stride, padding or dilation along it), from input x and output y.
struct Axes3d {
  std::array<std::int64_t, 3> in{1, 1, 1};
  std::array<std::int64_t, 3> out{1, 1, 1};
  std::array<std::int64_t, 3> kernel{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1};
  std::array<std::int64_t, 3> pad{0, 0, 0};
  std::array<std::int64_t, 3> dilation{1, 1, 1};
};

Axes3d axes_3d(const ConvolutionParams& p, const Tensor& x, const Dims& out) {
  const auto rank = p.kernel_size.size();
  const auto lead = 3 - rank;
  Axes3d a;
  for (std::size_t i = 0; i < rank; ++i) {
    a.in[lead + i] = x.dim(static_cast<int>(2 + i));
    a.out[lead + i] = out[2 + i];
    a.kernel[lead + i] = p.kernel_size[i];
    a.stride[lead + i] = p.stride[i];
    a.pad[lead + i] = p.padding[i];
    a.dilation[lead + i] = p.dilation[i];
  }
  return a;
}

Axes3d axes_3d(const ConvolutionParams& p, const Tensor& x, const Tensor& y) {
  return axes_3d(p, x, y.dims());
}

// One weight's gradient: the sum of dy * x over the batch and the output positions where its
// tap reads the input, each sum in a fixed order, so the same bytes on any thread count.
//
// With a stride along W, each output row's segment is summed into 16 double lanes (lane j takes
// the segment's terms j, j + 16, ...), the lanes added in order at the end.
constexpr std::int64_t kWeightLanes = 16;

void add_row_strided(const float* y, const float* x, std::int64_t count, std::int64_t stride,
                     double* lane) {
  std::int64_t i = 0;
  for (; i + kWeightLanes <= count; i += kWeightLanes) {
    for (std::int64_t j = 0; j < kWeightLanes; ++j) {
      lane[j] += static_cast<double>(y[i + j]) * x[(i + j) * stride];
    }
  }
  for (std::int64_t j = 0; i + j < count; ++j) {
    lane[j] += static_cast<double>(y[i + j]) * x[(i + j) * stride];
  }
}

using Float8 = float __attribute__((vector_size(32)));

// Without one (the usual case), the products are summed in float into 8 lanes per tap over one
// (image, output depth) plane, the lanes added pairwise at the end of the plane into the tap's
// double: a plane is a few hundred terms a lane at most, a few units in the last place of float,
// and the planes are summed in double. Adds y[i] * x[i], i < count, to acc.
[[gnu::always_inline]] inline void add_row_float(const float* y, const float* x, std::int64_t count,
                                                 float* acc) {
  Float8 sum;
  std::memcpy(&sum, acc, sizeof sum);
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    Float8 a;
    Float8 b;
    std::memcpy(&a, y + i, sizeof a);
    std::memcpy(&b, x + i, sizeof b);
    sum += a * b;
  }
  if (i < count && count >= 8) {
    // The last 8 values, overlapping the chunks summed: the lanes already counted add 0 (a
    // tail copied to the stack would be read back before its stores retire, a stall per row).
    using Int8 = std::int32_t __attribute__((vector_size(32)));
    const Int8 lane{0, 1, 2, 3, 4, 5, 6, 7};
    const auto counted = static_cast<std::int32_t>(i - (count - 8));
    Float8 a;
    Float8 b;
    std::memcpy(&a, y + count - 8, sizeof a);
    std::memcpy(&b, x + count - 8, sizeof b);
    const Float8 product = a * b;
    sum += lane >= counted ? product : Float8{};
  } else if (i < count) {
    float ys[8] = {};
    float xs[8] = {};
    std::copy(y + i, y + count, ys);
    std::copy(x + i, x + count, xs);
    Float8 a;
    Float8 b;
    std::memcpy(&a, ys, sizeof a);
    std::memcpy(&b, xs, sizeof b);
    sum += a * b;
  }
  std::memcpy(acc, &sum, sizeof sum);
}

// The gradients of one (output channel, input channel) pair's taps whose (kd, kh) row lies in
// [row_begin, row_end): one pass over the output rows, each row of dy and of x read once for all
// those taps (from L1) instead of once per tap.
struct WeightRows {
  const float* x;   // x at (image 0, ic)
  const float* dy;  // dy at (image 0, oc)
  std::int64_t x_image = 0;
  std::int64_t dy_image = 0;
  std::int64_t batch = 0;
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
  std::array<std::int64_t, 3> in{}, out{}, kernel{}, stride{}, pad{}, dilation{};
};

// out[j] = in[j - pad] for j < length where 0 <= j - pad < width, and 0 elsewhere: an input row
// of `width` values between the zeros its padding reads.
void copy_between_zeros(const float* in, std::int64_t width, std::int64_t pad, float* out,
                        std::int64_t length) {
  const std::int64_t begin = std::clamp<std::int64_t>(pad, 0, length);
  const std::int64_t end = std::clamp<std::int64_t>(pad + width, begin, length);
  std::fill(out, out + begin, 0.0f);
  if (end > begin) {
    std::copy(in + (begin - pad), in + (end - pad), out + begin);
  }
  std::fill(out + end, out + length, 0.0f);
}

// The taps along W of one output row and one input row with FMA: acc[kw * 8 ...] (8 float lanes
// a tap) += y[i] * x[i + kw * step] for i < 8 * chunks; y is zero past the row's outputs and x
// holds the input row with zeros around it, so every tap reads its values alike. A tap's lanes
// stay in a register over the row: where add_row_float ran once per tap, with its partial last
// vector, and without FMA (the AVX2 clone of weight_rows has none).
__attribute__((target("avx2,fma"))) void row_taps_fma(const float* y, const float* x,
                                                      std::int64_t chunks, std::int64_t taps,
                                                      std::int64_t step, float* acc) {
  for (std::int64_t kw = 0; kw < taps; ++kw) {
    __m256 sum = _mm256_loadu_ps(acc + kw * 8);
    const float* xs = x + kw * step;
    for (std::int64_t c = 0; c < chunks; ++c) {
      sum = _mm256_fmadd_ps(_mm256_loadu_ps(y + 8 * c), _mm256_loadu_ps(xs + 8 * c), sum);
    }
    _mm256_storeu_ps(acc + kw * 8, sum);
  }
}

// Adds each tap's sum to its lanes[tap * kWeightLanes ...] (16 doubles a tap).
__attribute__((target_clones("avx2", "default"))) void weight_rows(const WeightRows& r,
                                                                   double* lanes) {
  const std::int64_t kw_count = r.kernel[2];
  const std::int64_t taps = (r.row_end - r.row_begin) * kw_count;
  const bool unit = r.stride[2] == 1;
  // Along W, per kw: the outputs [first, last) whose input ow * stride + shift is inside.
  std::vector<std::int64_t> first(kw_count), last(kw_count), shift(kw_count);
  for (std::int64_t kw = 0; kw < kw_count; ++kw) {
    shift[kw] = kw * r.dilation[2] - r.pad[2];
    std::int64_t f = 0;
    while (f < r.out[2] && f * r.stride[2] + shift[kw] < 0) {
      ++f;
    }
    std::int64_t l = r.out[2];
    while (l > f && (l - 1) * r.stride[2] + shift[kw] >= r.in[2]) {
      --l;
    }
    first[kw] = f;
    last[kw] = l;
  }
  std::vector<float> plane(unit ? static_cast<std::size_t>(taps * 8) : 0);
  // With FMA (unit stride): the output row zero-padded to whole vectors, and the input row with
  // the zeros that tap kw, reading from kw * dilation, finds outside it.
  const bool fma = unit && detail::avx2_fma_kernels();
  const std::int64_t chunks = (r.out[2] + 7) / 8;
  std::vector<float> y_row(fma ? static_cast<std::size_t>(chunks * 8) : 0);
  std::vector<float> x_row(
      fma ? static_cast<std::size_t>(chunks * 8 + (kw_count - 1) * r.dilation[2]) : 0);
  for (std::int64_t n = 0; n < r.batch; ++n) {
    for (std::int64_t od = 0; od < r.out[0]; ++od) {
      std::fill(plane.begin(), plane.end(), 0.0f);
      for (std::int64_t oh = 0; oh < r.out[1]; ++oh) {
        const float* y = r.dy + n * r.dy_image + (od * r.out[1] + oh) * r.out[2];
        if (fma) {
          std::copy(y, y + r.out[2], y_row.begin());
        }
        for (std::int64_t row = r.row_begin; row < r.row_end; ++row) {
          const std::int64_t id = od * r.stride[0] + (row / r.kernel[1]) * r.dilation[0] - r.pad[0];
          const std::int64_t ih = oh * r.stride[1] + (row % r.kernel[1]) * r.dilation[1] - r.pad[1];
          if (id < 0 || id >= r.in[0] || ih < 0 || ih >= r.in[1]) {
            continue;
          }
          const float* x = r.x + n * r.x_image + (id * r.in[1] + ih) * r.in[2];
          const std::int64_t tap0 = (row - r.row_begin) * kw_count;
          if (fma) {
            copy_between_zeros(x, r.in[2], r.pad[2], x_row.data(),
                               static_cast<std::int64_t>(x_row.size()));
            row_taps_fma(y_row.data(), x_row.data(), chunks, kw_count, r.dilation[2],
                         plane.data() + tap0 * 8);
            continue;
          }
          for (std::int64_t kw = 0; kw < kw_count; ++kw) {
            const std::int64_t count = last[kw] - first[kw];
            const float* xs = x + first[kw] * r.stride[2] + shift[kw];
            if (unit) {
              add_row_float(y + first[kw], xs, count, plane.data() + (tap0 + kw) * 8);
            } else {
              add_row_strided(y + first[kw], xs, count, r.stride[2],
                              lanes + (tap0 + kw) * kWeightLanes);
            }
          }
        }
      }
      for (std::int64_t t = 0; unit && t < taps; ++t) {
        const float* a = plane.data() + t * 8;
        lanes[t * kWeightLanes] +=
            static_cast<double>(((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])));
      }
    }
  }
}

// The weight gradient of a convolution whose taps (in channels x kd x kh x kw) number at most 32,
// unit stride and dilation along W, kw at most 8 (LeNet-5's 1->6 5x5 first layer, a 3D U-Net's
// 1->16 3x3x3, where the AVX-512 kernels do not run): weight_rows' rows there are a few dozen
// values and its calls cost more than their sums. Here each output row's columns get their taps
// gathered into 32 floats (the kernel rows' runs of kw values, copied 8 at a time from the input
// row between zeros), and each column adds its output gradient times those 4 vectors of taps for up
// to 3 output channels (12 registers), in float over 8 output rows and then in double.
constexpr std::int64_t kGatheredTaps = 32;
constexpr std::int64_t kGatherStride = kGatheredTaps + 8;  // floats a column: room for a run's 8

bool gathers_weight_taps(const Axes3d& a, std::int64_t in_channels) {
  return detail::avx2_fma_kernels() && a.stride[2] == 1 && a.dilation[2] == 1 && a.kernel[2] <= 8 &&
         in_channels * a.kernel[0] * a.kernel[1] * a.kernel[2] <= kGatheredTaps;
}

// The sums of one (image, output depth) plane for output channels [oc0, oc0 + kOut): acc[o * 32
// + tap] (doubles). `columns` holds the gathered taps of a row, `line` a padded input row.
struct GatherPlane {
  const float* x;   // image n
  const float* dy;  // image n, channel oc0, depth od
  std::int64_t od = 0;
  std::int64_t in_channels = 0;
  std::int64_t dy_channel = 0;  // values per output channel
  const Axes3d* a = nullptr;
};

template <int kOut>
__attribute__((target("avx2,fma"))) void gather_plane(const GatherPlane& g, double* acc,
                                                      float* columns, float* line) {
  const Axes3d& a = *g.a;
  const std::int64_t kw = a.kernel[2];
  const std::int64_t rows = g.in_channels * a.kernel[0] * a.kernel[1];
  const std::int64_t width = a.out[2];
  const std::int64_t line_length = width + kw - 1 + 8;
  constexpr std::int64_t kFlushRows = 8;
  __m256 sum[kOut][4];
#pragma GCC unroll 3
  for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      sum[o][v] = _mm256_setzero_ps();
    }
  }
  for (std::int64_t oh = 0; oh < a.out[1]; ++oh) {
    // Gather: column ow's taps r * kw + k = x[ic, id, ih][ow + k - pad], r = (ic, kd, kh).
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t ic = r / (a.kernel[0] * a.kernel[1]);
      const std::int64_t id =
          g.od * a.stride[0] + (r / a.kernel[1]) % a.kernel[0] * a.dilation[0] - a.pad[0];
      const std::int64_t ih = oh * a.stride[1] + r % a.kernel[1] * a.dilation[1] - a.pad[1];
      if (id >= 0 && id < a.in[0] && ih >= 0 && ih < a.in[1]) {
        copy_between_zeros(g.x + ((ic * a.in[0] + id) * a.in[1] + ih) * a.in[2], a.in[2], a.pad[2],
                           line, line_length);
      } else {
        std::fill(line, line + line_length, 0.0f);  // a kernel row in the padding
      }
      for (std::int64_t ow = 0; ow < width; ++ow) {
        _mm256_storeu_ps(columns + ow * kGatherStride + r * kw, _mm256_loadu_ps(line + ow));
      }
    }
    const float* d = g.dy + oh * width;
    for (std::int64_t ow = 0; ow < width; ++ow) {
      const float* t = columns + ow * kGatherStride;
      const __m256 t0 = _mm256_loadu_ps(t);
      const __m256 t1 = _mm256_loadu_ps(t + 8);
      const __m256 t2 = _mm256_loadu_ps(t + 16);
      const __m256 t3 = _mm256_loadu_ps(t + 24);
#pragma GCC unroll 3
      for (int o = 0; o < kOut; ++o) {
        const __m256 b = _mm256_broadcast_ss(d + o * g.dy_channel + ow);
        sum[o][0] = _mm256_fmadd_ps(b, t0, sum[o][0]);
        sum[o][1] = _mm256_fmadd_ps(b, t1, sum[o][1]);
        sum[o][2] = _mm256_fmadd_ps(b, t2, sum[o][2]);
        sum[o][3] = _mm256_fmadd_ps(b, t3, sum[o][3]);
      }
    }
    if ((oh + 1) % kFlushRows != 0 && oh + 1 != a.out[1]) {
      continue;
    }
#pragma GCC unroll 3
    for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        detail::add_widened(acc + o * kGatheredTaps + v * 8, sum[o][v]);
        sum[o][v] = _mm256_setzero_ps();
      }
    }
  }
}

// Adds to dw the gradient by gather_plane: one item per (block of 3 output channels, image,
// output depth), each summed apart and the items added in order: the same bytes on any thread
// count.
void gathered_weight_gradient(const Axes3d& a, const Tensor& x, const Tensor& dy,
                              std::int64_t in_channels, std::int64_t out_channels, Tensor& dw,
                              int threads) {
  constexpr std::int64_t kBlockOut = 3;
  const std::int64_t blocks = (out_channels + kBlockOut - 1) / kBlockOut;
  const std::int64_t batch = x.dim(0);
  const std::int64_t planes = batch * a.out[0];
  const std::int64_t items = blocks * planes;
  const std::int64_t in_image = in_channels * a.in[0] * a.in[1] * a.in[2];
  const std::int64_t dy_channel = a.out[0] * a.out[1] * a.out[2];
  std::vector<double> sums(static_cast<std::size_t>(items * kBlockOut * kGatheredTaps), 0.0);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> columns(static_cast<std::size_t>(a.out[2] * kGatherStride + 8), 0.0f);
    std::vector<float> line(static_cast<std::size_t>(a.out[2] + a.kernel[2] - 1 + 8));
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t block = item / planes;
      const std::int64_t n = item % planes / a.out[0];
      const std::int64_t od = item % a.out[0];
      const std::int64_t oc0 = block * kBlockOut;
      const GatherPlane g{
          .x = x.data() + n * in_image,
          .dy = dy.data() + (n * out_channels + oc0) * dy_channel + od * a.out[1] * a.out[2],
          .od = od,
          .in_channels = in_channels,
          .dy_channel = dy_channel,
          .a = &a};
      double* acc = sums.data() + item * kBlockOut * kGatheredTaps;
      switch (std::min(kBlockOut, out_channels - oc0)) {
        case 1:
          gather_plane<1>(g, acc, columns.data(), line.data());
          break;
        case 2:
          gather_plane<2>(g, acc, columns.data(), line.data());
          break;
        default:
          gather_plane<3>(g, acc, columns.data(), line.data());
      }
    }
  }
  const std::int64_t taps = in_channels * a.kernel[0] * a.kernel[1] * a.kernel[2];
  float* dws = dw.data();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t oc = 0; oc < out_channels; ++oc) {
    const std::int64_t block = oc / kBlockOut;
    const std::int64_t o = oc % kBlockOut;
    for (std::int64_t t = 0; t < taps; ++t) {
      double total = 0;
      for (std::int64_t plane = 0; plane < planes; ++plane) {
        total += sums[static_cast<std::size_t>(
            ((block * planes + plane) * kBlockOut + o) * kGatheredTaps + t)];
      }
      dws[oc * taps + t] += static_cast<float>(total);
    }
  }
}

// The weight gradient of a convolution of one input channel with unit stride and dilation along
// W and a kernel 3 or 5 wide, where the engine's AVX-512 kernels run (LeNet-5's 1 -> 6 5x5 C1; a
// 3D U-Net's 1 -> 16 3x3x3): gathered_weight_gradient copies every column's taps apart and sums 8
// of them at a time, 44-58 GFLOP/s here. Here, for each kernel row (kd, kh), 16 output columns of
// kOut channels' output gradient at a time multiply the input row shifted by each of the kKW
// taps: kOut x kKW sums of 16 lanes in registers, in float over 32 output rows and then in double,
// one item per (block of output channels, kernel row) over the whole batch, so the same bytes on
// any thread count. (LeNet-5's C3, 6 input channels, rows of 10, took 0.35 ms a step so against
// oneDNN's 0.26: left to oneDNN.)
constexpr std::int64_t kShiftedLanes = 16;

bool sums_shifted_rows(const Axes3d& a, std::int64_t in_channels) {
  return detail::avx512_kernels() && in_channels == 1 && a.stride[2] == 1 &&
         a.dilation == std::array<std::int64_t, 3>{1, 1, 1} &&
         (a.kernel[2] == 3 || a.kernel[2] == 5);
}

// One item: kOut output channels (`count` of them real, the rest's sums not read) and a kernel
// row (kd, kh), over the whole batch.
struct ShiftedRows {
  const float* x;   // [N, 1, D, H, W]
  const float* dy;  // output channel oc0's gradient, channels dy_channel apart
  std::int64_t batch = 0;
  std::int64_t out_channels = 0;
  std::int64_t count = 0;
  std::int64_t kd = 0;
  std::int64_t kh = 0;
  const Axes3d* a = nullptr;
};

// v's 16 floats widened to double, lane j + 8 added to lane j. (Under full masks: GCC 12 takes
// the unmasked forms' undefined pass-through for uninitialised.)
__attribute__((target("avx512f"), always_inline)) inline __m512d widened_halves(__m512 v) {
  const __m512d low = _mm512_maskz_cvtps_pd(
      0xff, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, _mm512_castps_pd(v), 0)));
  const __m512d high = _mm512_maskz_cvtps_pd(
      0xff, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, _mm512_castps_pd(v), 1)));
  return _mm512_add_pd(low, high);
}

// Returns in sums[o * kKW + t] the item's sums: every output row's, 16 columns at a time, in
// float over 32 rows, then in 8 double lanes added in order at the end.
template <int kOut, int kKW>
__attribute__((target("avx512f"))) void shifted_rows(const ShiftedRows& r, double* sums) {
  const Axes3d& a = *r.a;
  constexpr std::int64_t kFlushRows = 32;
  const std::int64_t width = a.out[2];
  const std::int64_t in_plane = a.in[0] * a.in[1] * a.in[2];
  const std::int64_t dy_channel = a.out[0] * a.out[1] * width;
  __m512 sum[kOut][kKW];
  __m512d total[kOut][kKW];
#pragma GCC unroll 8
  for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 5
    for (int t = 0; t < kKW; ++t) {
      sum[o][t] = _mm512_setzero_ps();
      total[o][t] = _mm512_setzero_pd();
    }
  }
  // Each chunk of 16 columns' masks: its columns inside the output row, and for each tap the
  // lanes l with 0 <= w0 + l + t - pad < W.
  const std::int64_t chunks = (width + kShiftedLanes - 1) / kShiftedLanes;
  std::vector<__mmask16> masks(static_cast<std::size_t>(chunks * (kKW + 1)));
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t w0 = c * kShiftedLanes;
    const std::int64_t columns = std::min(kShiftedLanes, width - w0);
    masks[static_cast<std::size_t>(c * (kKW + 1))] =
        static_cast<__mmask16>(columns == kShiftedLanes ? 0xffffu : (1u << columns) - 1u);
    for (int t = 0; t < kKW; ++t) {
      const std::int64_t first = std::clamp<std::int64_t>(a.pad[2] - t - w0, 0, 16);
      const std::int64_t end = std::clamp<std::int64_t>(a.in[2] + a.pad[2] - t - w0, 0, 16);
      masks[static_cast<std::size_t>(c * (kKW + 1) + 1 + t)] =
          static_cast<__mmask16>(((1u << end) - 1u) & ~((1u << first) - 1u));
    }
  }
  std::int64_t pending = 0;
  for (std::int64_t n = 0; n < r.batch; ++n) {
    const float* const image = r.x + n * in_plane;
    const float* const gradient = r.dy + n * r.out_channels * dy_channel;
    for (std::int64_t od = 0; od < a.out[0]; ++od) {
      const std::int64_t id = od * a.stride[0] + r.kd - a.pad[0];
      for (std::int64_t oh = 0; oh < a.out[1]; ++oh) {
        const std::int64_t ih = oh * a.stride[1] + r.kh - a.pad[1];
        if (id < 0 || id >= a.in[0] || ih < 0 || ih >= a.in[1]) {
          continue;  // a kernel row in the padding
        }
        // Column ow's tap t reads the input at ow + t - pad, in place, the lanes outside the row
        // masked off (no copy to a padded row: loads of a row just stored stall on the stores).
        const float* from = image + (id * a.in[1] + ih) * a.in[2];
        const float* d = gradient + (od * a.out[1] + oh) * width;
        for (std::int64_t c = 0; c < chunks; ++c) {
          const std::int64_t w0 = c * kShiftedLanes;
          const __mmask16* mask = masks.data() + c * (kKW + 1);
          const __mmask16 valid = mask[0];
          __m512 x[kKW];
#pragma GCC unroll 5
          for (int t = 0; t < kKW; ++t) {
            // The address may lie before the row (its lanes there masked): by integers.
            const auto at = reinterpret_cast<std::uintptr_t>(from) +
                            static_cast<std::uintptr_t>((w0 + t - a.pad[2]) *
                                                        static_cast<std::int64_t>(sizeof(float)));
            x[t] = _mm512_maskz_loadu_ps(mask[1 + t], reinterpret_cast<const float*>(at));
          }
#pragma GCC unroll 8
          for (int o = 0; o < kOut; ++o) {
            // Past the last channel, zeros (read from channel 0: in bounds).
            const __m512 y = _mm512_maskz_loadu_ps(o < r.count ? valid : __mmask16{0},
                                                   d + (o < r.count ? o : 0) * dy_channel + w0);
#pragma GCC unroll 5
            for (int t = 0; t < kKW; ++t) {
              sum[o][t] = _mm512_fmadd_ps(y, x[t], sum[o][t]);
            }
          }
        }
        if (++pending < kFlushRows) {
          continue;
        }
        pending = 0;
#pragma GCC unroll 8
        for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 5
          for (int t = 0; t < kKW; ++t) {
            total[o][t] = _mm512_add_pd(total[o][t], widened_halves(sum[o][t]));
            sum[o][t] = _mm512_setzero_ps();
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 5
    for (int t = 0; t < kKW; ++t) {
      alignas(64) double lanes[8];
      _mm512_store_pd(lanes, _mm512_add_pd(total[o][t], widened_halves(sum[o][t])));
      sums[o * kKW + t] = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
                          ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    }
  }
}

template <int kOut, int kKW>
void shifted_rows_weight_gradient(const Axes3d& a, const Tensor& x, const Tensor& dy,
                                  std::int64_t out_channels, Tensor& dw, int threads) {
  const std::int64_t blocks = (out_channels + kOut - 1) / kOut;
  const std::int64_t kernel_rows = a.kernel[0] * a.kernel[1];
  const std::int64_t dy_channel = a.out[0] * a.out[1] * a.out[2];
  std::vector<double> sums(static_cast<std::size_t>(blocks * kernel_rows * kOut * kKW));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t item = 0; item < blocks * kernel_rows; ++item) {
    const std::int64_t block = item / kernel_rows;
    const std::int64_t k = item % kernel_rows;
    const std::int64_t oc0 = block * kOut;
    const ShiftedRows r{.x = x.data(),
                        .dy = dy.data() + oc0 * dy_channel,
                        .batch = x.dim(0),
                        .out_channels = out_channels,
                        .count = std::min<std::int64_t>(kOut, out_channels - oc0),
                        .kd = k / a.kernel[1],
                        .kh = k % a.kernel[1],
                        .a = &a};
    shifted_rows<kOut, kKW>(r, sums.data() + item * kOut * kKW);
  }
  // dw [OC, 1, KD, KH, KW]: kernel row k's taps at k * kKW.
  float* dws = dw.data();
  for (std::int64_t oc = 0; oc < out_channels; ++oc) {
    const std::int64_t block = oc / kOut;
    for (std::int64_t k = 0; k < kernel_rows; ++k) {
      for (std::int64_t t = 0; t < kKW; ++t) {
        dws[(oc * kernel_rows + k) * kKW + t] += static_cast<float>(sums[static_cast<std::size_t>(
            ((block * kernel_rows + k) * kOut + oc % kOut) * kKW + t)]);
      }
    }
  }
}

// Adds to dw (PyTorch's [OC, IC, K...]) and db the gradient of a plain convolution (groups 1)
// from its input x and diff_dst dy, both [N, C, (D,) H, W]: by gathered_weight_gradient where it
// fits, else weight_rows per (output channel, input channel) pair and block of kernel rows, as
// many blocks as keep every thread busy; one double sum per bias. Each sum has a fixed order, so
// any thread count gives the same bytes.
void direct_weight_gradient(const ConvolutionParams& p, const Tensor& x, const Tensor& dy,
                            Tensor& dw, Tensor* db, int threads) {
  const Axes3d axes = axes_3d(p, x, dy);
  const auto [in, out, k, s, pad, dil] = axes;
  const std::int64_t batch = x.dim(0);
  const std::int64_t ic_count = p.in_channels;
  const std::int64_t oc_count = p.out_channels;
  const std::int64_t taps = k[0] * k[1] * k[2];
  const std::int64_t in_voxels = in[0] * in[1] * in[2];
  const std::int64_t out_voxels = out[0] * out[1] * out[2];
  const std::int64_t pairs = oc_count * ic_count;
  const std::int64_t kernel_rows = k[0] * k[1];
  const std::int64_t blocks =
      std::clamp<std::int64_t>((2 * threads + pairs - 1) / pairs, 1, kernel_rows);
  float* dws = dw.data();
  if (sums_shifted_rows(axes, ic_count)) {
    // As many output channels at a time as keep the sums, the shifted input rows and an output
    // gradient in registers.
    if (k[2] == 5) {
      shifted_rows_weight_gradient<3, 5>(axes, x, dy, oc_count, dw, threads);
    } else {
      shifted_rows_weight_gradient<8, 3>(axes, x, dy, oc_count, dw, threads);
    }
  } else if (gathers_weight_taps(axes, ic_count)) {
    gathered_weight_gradient(axes, x, dy, ic_count, oc_count, dw, threads);
  } else {
#pragma omp parallel num_threads(threads)
    {
      std::vector<double> lanes;
#pragma omp for schedule(static)
      for (std::int64_t item = 0; item < pairs * blocks; ++item) {
        const std::int64_t pair = item / blocks;
        const std::int64_t block = item % blocks;
        const std::int64_t oc = pair / ic_count;
        const std::int64_t ic = pair % ic_count;
        WeightRows r{.x = x.data() + ic * in_voxels,
                     .dy = dy.data() + oc * out_voxels,
                     .x_image = ic_count * in_voxels,
                     .dy_image = oc_count * out_voxels,
                     .batch = batch,
                     .row_begin = block * kernel_rows / blocks,
                     .row_end = (block + 1) * kernel_rows / blocks,
                     .in = in,
                     .out = out,
                     .kernel = k,
                     .stride = s,
                     .pad = pad,
                     .dilation = dil};
        const std::int64_t block_taps = (r.row_end - r.row_begin) * k[2];
        lanes.assign(static_cast<std::size_t>(block_taps * kWeightLanes), 0.0);
        weight_rows(r, lanes.data());
        for (std::int64_t t = 0; t < block_taps; ++t) {
          double sum = 0;
          for (std::int64_t j = 0; j < kWeightLanes; ++j) {
            sum += lanes[static_cast<std::size_t>(t * kWeightLanes + j)];
          }
          dws[pair * taps + r.row_begin * k[2] + t] += static_cast<float>(sum);
        }
      }
    }
  }
  if (db != nullptr) {
    const std::int64_t voxels = out_voxels;
    const float* ys = dy.data();
    float* dbs = db->data();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t oc = 0; oc < oc_count; ++oc) {
      // 16 double lanes (lane j takes an image's values j, j + 16, ...), added in order at the
      // end: independent sums that vectorise, where one running sum waited on each addition.
      double lane[kWeightLanes] = {};
      for (std::int64_t n = 0; n < batch; ++n) {
        const float* y = ys + (n * oc_count + oc) * voxels;
        std::int64_t v = 0;
        for (; v + kWeightLanes <= voxels; v += kWeightLanes) {
          for (std::int64_t j = 0; j < kWeightLanes; ++j) {
            lane[j] += y[v + j];
          }
        }
        for (std::int64_t j = 0; v + j < voxels; ++j) {
          lane[j] += y[v + j];
        }
      }
      double sum = 0;
      for (const double value : lane) {
        sum += value;
      }
      dbs[oc] += static_cast<float>(sum);
    }
  }
}

// Descriptors shared by the forward and backward primitives.
struct Geometry {
  dnnl::memory::desc src;  // format any
  dnnl::memory::desc weights;
  dnnl::memory::desc bias;  // plain, or empty without bias
  dnnl::memory::desc dst;
  dnnl::memory::desc plain_weights;  // PyTorch's layout
  dnnl::memory::dims stride;
  dnnl::memory::dims dilation;  // oneDNN's: 0 is none
  dnnl::memory::dims padding;
};

// A convolution of 1 or 2 input channels (a network's first layer): oneDNN v2.6 runs LeNet-5's
// 1->6 5x5 at 10 GFLOP/s here, its jit kernels built for many channels. Each output row (n, d, h)
// is made from its input rows (ic, kd, kh) copied with their zero padding and split by stride
// phase (phase r holds padded columns r, r + s, ...), so that the 8 outputs of a vector read 8
// consecutive values for every tap; 8 output channels at a time share each value read.
// Floats a thin row kernel may read past a row's last output (its last chunk's unused vectors).
constexpr std::int64_t kThinOverrun = 64;

struct ThinShape {
  std::int64_t rows;          // input rows per output row: in channels x kd x kh, in that order
  std::int64_t kw;            // taps along W
  std::int64_t stride;        // along W
  std::int64_t phase_length;  // floats per stride phase of a prepared row, kThinOverrun past
                              // its last tap
  std::int64_t out_width;
  std::int64_t out_channels;
};

// Outputs [oc0, oc0 + kOut) of one output row: bias, then the taps in the order (ic, kd, kh, kw)
// (the same bytes on any thread count); `prepared` null where the tap's row lies in the padding.
// `weights` holds [rows, kw, out_channels], out channels innermost. Compiled for AVX2 and for the
// baseline, chosen at load time by the CPU.
template <int kOut>
__attribute__((target_clones("avx2", "default"))) void thin_row(
    const float* const* prepared, const float* weights, const float* bias, float* out,
    std::int64_t out_plane, std::int64_t oc0, const ThinShape& shape) {
  constexpr std::int64_t kChunk = 8;
  for (std::int64_t w0 = 0; w0 < shape.out_width; w0 += kChunk) {
    Float8 acc[kOut];
    for (int o = 0; o < kOut; ++o) {
      acc[o] = Float8{} + (bias == nullptr ? 0.0f : bias[oc0 + o]);
    }
    for (std::int64_t r = 0; r < shape.rows; ++r) {
      if (prepared[r] == nullptr) {
        continue;
      }
      // Tap b reads phase b % stride from position b / stride, counted here without a division.
      for (std::int64_t b = 0, phase = 0, at = w0; b < shape.kw; ++b) {
        Float8 x;
        std::memcpy(&x, prepared[r] + phase * shape.phase_length + at, sizeof x);
        if (++phase == shape.stride) {
          phase = 0;
          ++at;
        }
        const float* w = weights + (r * shape.kw + b) * shape.out_channels + oc0;
        for (int o = 0; o < kOut; ++o) {
          acc[o] += w[o] * x;
        }
      }
    }
    const std::int64_t columns = std::min(kChunk, shape.out_width - w0);
    for (int o = 0; o < kOut; ++o) {
      float sums[kChunk];
      std::memcpy(sums, &acc[o], sizeof sums);
      std::copy(sums, sums + columns, out + (oc0 + o) * out_plane + w0);
    }
  }
}

// thin_row with fused multiply-adds, for CPUs with AVX2 and FMA (the AVX2 clone above has no
// FMA: a multiply and an add each, 43 GFLOP/s on LeNet-5's first layer). The same taps in the
// same order, each product added unrounded. Up to 6 output channels take 16 outputs at a time:
// 12 independent sums keep both FMA units busy through their latency, where 6 waited on it.
template <int kOut>
__attribute__((target("avx2,fma"))) void thin_row_fma(const float* const* prepared,
                                                      const float* weights, const float* bias,
                                                      float* out, std::int64_t out_plane,
                                                      std::int64_t oc0, const ThinShape& shape) {
  constexpr int kVectors = kOut <= 6 ? 2 : 1;
  constexpr std::int64_t kChunk = 8 * kVectors;
  for (std::int64_t w0 = 0; w0 < shape.out_width; w0 += kChunk) {
    __m256 acc[kVectors][kOut];
#pragma GCC unroll 8
    for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 2
      for (int v = 0; v < kVectors; ++v) {
        acc[v][o] = _mm256_set1_ps(bias == nullptr ? 0.0f : bias[oc0 + o]);
      }
    }
    for (std::int64_t r = 0; r < shape.rows; ++r) {
      if (prepared[r] == nullptr) {
        continue;
      }
      for (std::int64_t b = 0, phase = 0, at = w0; b < shape.kw; ++b) {
        const float* xs = prepared[r] + phase * shape.phase_length + at;
        if (++phase == shape.stride) {
          phase = 0;
          ++at;
        }
        __m256 x[kVectors];
#pragma GCC unroll 2
        for (int v = 0; v < kVectors; ++v) {
          x[v] = _mm256_loadu_ps(xs + 8 * v);
        }
        const float* w = weights + (r * shape.kw + b) * shape.out_channels + oc0;
#pragma GCC unroll 8
        for (int o = 0; o < kOut; ++o) {
          const __m256 weight = _mm256_broadcast_ss(w + o);
#pragma GCC unroll 2
          for (int v = 0; v < kVectors; ++v) {
            acc[v][o] = _mm256_fmadd_ps(weight, x[v], acc[v][o]);
          }
        }
      }
    }
#pragma GCC unroll 2
    for (int v = 0; v < kVectors; ++v) {
      const std::int64_t first = w0 + 8 * v;
      const std::int64_t columns = std::min<std::int64_t>(8, shape.out_width - first);
#pragma GCC unroll 8
      for (int o = 0; o < kOut && columns > 0; ++o) {
        float* dst = out + (oc0 + o) * out_plane + first;
        if (columns == 8) {
          _mm256_storeu_ps(dst, acc[v][o]);
        } else {
          float sums[8];
          _mm256_storeu_ps(sums, acc[v][o]);
          std::copy(sums, sums + columns, dst);
        }
      }
    }
  }
}

// Which row kernel thin_rows runs: the AVX-512 one and the AVX2 one give the same bytes (fused
// multiply-adds in the same order); the portable one rounds each product.
enum class ThinKernel { portable, avx2_fma, avx512 };
ThinKernel thin_kernel() {
  return detail::avx512_kernels()     ? ThinKernel::avx512
         : detail::avx2_fma_kernels() ? ThinKernel::avx2_fma
                                      : ThinKernel::portable;
}

// thin_row_fma with AVX-512: 16 outputs a vector, 32 at a time for up to 6 output channels
// (twelve independent sums), the last ones stored under a mask. The same taps in the same order,
// each product added unrounded: the same bytes as thin_row_fma.
template <int kOut, int kVectors>
__attribute__((target("avx512f"))) void thin_row_avx512(const float* const* prepared,
                                                        const float* weights, const float* bias,
                                                        float* out, std::int64_t out_plane,
                                                        std::int64_t oc0, const ThinShape& shape) {
  static_assert(kOut * kVectors + kVectors < 32 && 16 * kVectors <= kThinOverrun);
  constexpr std::int64_t kChunk = 16 * kVectors;
  for (std::int64_t w0 = 0; w0 < shape.out_width; w0 += kChunk) {
    __m512 acc[kVectors][kOut];
#pragma GCC unroll 8
    for (int o = 0; o < kOut; ++o) {
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) {
        acc[v][o] = _mm512_set1_ps(bias == nullptr ? 0.0f : bias[oc0 + o]);
      }
    }
    for (std::int64_t r = 0; r < shape.rows; ++r) {
      if (prepared[r] == nullptr) {
        continue;
      }
      for (std::int64_t b = 0, phase = 0, at = w0; b < shape.kw; ++b) {
        const float* xs = prepared[r] + phase * shape.phase_length + at;
        if (++phase == shape.stride) {
          phase = 0;
          ++at;
        }
        __m512 x[kVectors];
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) {
          x[v] = _mm512_loadu_ps(xs + 16 * v);
        }
        const float* w = weights + (r * shape.kw + b) * shape.out_channels + oc0;
#pragma GCC unroll 8
        for (int o = 0; o < kOut; ++o) {
          const __m512 weight = _mm512_set1_ps(w[o]);
#pragma GCC unroll 4
          for (int v = 0; v < kVectors; ++v) {
            acc[v][o] = _mm512_fmadd_ps(weight, x[v], acc[v][o]);
          }
        }
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) {
      const std::int64_t first = w0 + 16 * v;
      const std::int64_t columns = std::min<std::int64_t>(16, shape.out_width - first);
      if (columns <= 0) {
        continue;
      }
      const auto mask = static_cast<__mmask16>((1u << columns) - 1u);
#pragma GCC unroll 8
      for (int o = 0; o < kOut; ++o) {
        _mm512_mask_storeu_ps(out + (oc0 + o) * out_plane + first, mask, acc[v][o]);
      }
    }
  }
}

// thin_row<kOut> for the last `rest` (1 to kOut) output channels from oc0.
template <int kOut>
void thin_rest(const float* const* prepared, const float* weights, const float* bias, float* out,
               std::int64_t out_plane, std::int64_t oc0, std::int64_t rest, const ThinShape& shape,
               ThinKernel kernel) {
  if constexpr (kOut > 1) {
    if (rest < kOut) {
      return thin_rest<kOut - 1>(prepared, weights, bias, out, out_plane, oc0, rest, shape, kernel);
    }
  }
  switch (kernel) {
    case ThinKernel::avx512: {
      // Rows of up to 32 (LeNet-5's) in 1 or 2 vectors an output channel; longer ones in 3 or
      // 4, loading each input vector once for more accumulators (24 or 16 of the 32 registers).
      constexpr int kShort = kOut <= 6 ? 2 : 1;
      constexpr int kLong = kOut <= 4 ? 4 : 3;
      if (shape.out_width <= 32) {
        return thin_row_avx512<kOut, kShort>(prepared, weights, bias, out, out_plane, oc0, shape);
      }
      return thin_row_avx512<kOut, kLong>(prepared, weights, bias, out, out_plane, oc0, shape);
    }
    case ThinKernel::avx2_fma:
      return thin_row_fma<kOut>(prepared, weights, bias, out, out_plane, oc0, shape);
    case ThinKernel::portable:
      return thin_row<kOut>(prepared, weights, bias, out, out_plane, oc0, shape);
  }
}

void thin_rows(const float* const* prepared, const float* weights, const float* bias, float* out,
               std::int64_t out_plane, const ThinShape& shape, ThinKernel kernel) {
  std::int64_t oc = 0;
  for (; oc + 8 <= shape.out_channels; oc += 8) {
    thin_rest<8>(prepared, weights, bias, out, out_plane, oc, 8, shape, kernel);
  }
  if (oc < shape.out_channels) {
    thin_rest<7>(prepared, weights, bias, out, out_plane, oc, shape.out_channels - oc, shape,
                 kernel);
  }
}

// The input rows thin_rows reads for one output row of a thin convolution over `x`.
class ThinRows {
 public:
  ThinRows(const ConvolutionParams& p, const Tensor& x, const Dims& out_dims)
      : x_(x), a_(axes_3d(p, x, out_dims)) {
    const auto [kd, kh, kw] = a_.kernel;
    const std::int64_t out_w = a_.out[2];
    const std::int64_t sw = a_.stride[2];
    shape_ = {x.dim(1) * kd * kh, kw, sw, out_w + (kw - 1) / sw + kThinOverrun, out_w, out_dims[1]};
    rows_.resize(static_cast<std::size_t>(shape_.rows * sw * shape_.phase_length));
    prepared_.resize(static_cast<std::size_t>(shape_.rows));
    held_.assign(static_cast<std::size_t>(shape_.rows), nullptr);
  }
  const ThinShape& shape() const { return shape_; }
  const Axes3d& axes() const { return a_; }

  // Input row r (in channels x kd x kh, in that order) of output row (n, od, oh): copied with
  // its padding (by stride phase), or null where it lies in the padding. Input row (ic, id, ih)
  // has slot (ic, id % kd, ih % kh), which no other row of the same output row takes: a row the
  // slot still holds (the next output row's kh - 1 rows shared with this one) is not copied again.
  const float* const* prepare(std::int64_t n, std::int64_t od, std::int64_t oh) {
    const std::int64_t phases_length = a_.stride[2] * shape_.phase_length;
    each_input_row(n, od, oh, [&](std::size_t r, std::int64_t slot, const float* line) {
      if (line == nullptr) {
        prepared_[r] = nullptr;
        return;
      }
      float* phases = rows_.data() + slot * phases_length;
      prepared_[r] = phases;
      if (!holds(slot, line)) {
        held_[static_cast<std::size_t>(slot)] = line;
        copy_row(line, phases);
      }
    });
    return prepared_.data();
  }

  // Asks the cache for the input rows the output row after (n, od, oh) takes that no slot holds
  // (along H, kh - sh of kh rows are shared; the first row of the next plane shares none): their
  // copies in prepare() then read from cache rather than wait on memory, which the hardware's
  // prefetcher does not foresee (rows of different planes).
  void prefetch_next(std::int64_t n, std::int64_t od, std::int64_t oh) const {
    if (++oh == a_.out[1]) {
      oh = 0;
      if (++od == a_.out[0]) {
        od = 0;
        if (++n == x_.dim(0)) {
          return;
        }
      }
    }
    const std::int64_t bytes = a_.in[2] * std::int64_t{sizeof(float)};
    each_input_row(n, od, oh, [&](std::size_t /*r*/, std::int64_t slot, const float* line) {
      if (line == nullptr || holds(slot, line)) {
        return;
      }
      for (std::int64_t at = 0; at < bytes; at += 64) {
        __builtin_prefetch(reinterpret_cast<const char*>(line) + at, 0, 2);
      }
    });
  }

 private:
  // visit(r, slot, line) for each input row r (in channels x kd x kh, in that order) of output
  // row (n, od, oh): its slot (ic, id % kd, ih % kh), which no other row of the same output row
  // takes, and its first value in x, or null where it lies in the padding.
  template <typename Visit>
  [[gnu::always_inline]] void each_input_row(std::int64_t n, std::int64_t od, std::int64_t oh,
                                             Visit&& visit) const {
    const auto [in_d, in_h, in_w] = a_.in;
    const auto [kd, kh, kw] = a_.kernel;
    const auto [sd, sh, sw] = a_.stride;
    const auto [pd, ph, pw] = a_.pad;
    const std::int64_t ic_count = x_.dim(1);
    std::size_t r = 0;
    for (std::int64_t ic = 0; ic < ic_count; ++ic) {
      for (std::int64_t a = 0; a < kd; ++a) {
        const std::int64_t id = od * sd + a - pd;
        for (std::int64_t b = 0; b < kh; ++b, ++r) {
          const std::int64_t ih = oh * sh + b - ph;
          if (id < 0 || id >= in_d || ih < 0 || ih >= in_h) {
            visit(r, 0, nullptr);
            continue;
          }
          visit(r, (ic * kd + id % kd) * kh + ih % kh,
                x_.data() + ((n * ic_count + ic) * in_d + id) * in_h * in_w + ih * in_w);
        }
      }
    }
  }

  // Whether `slot` holds the copy of the input row at `line` (its place in x tells it apart from
  // every other row, of any image).
  bool holds(std::int64_t slot, const float* line) const {
    return held_[static_cast<std::size_t>(slot)] == line;
  }

  // Input row `line` into its slot's phases, with the padding around it (by stride phase).
  void copy_row(const float* line, float* phases) const {
    const std::int64_t in_w = a_.in[2];
    const std::int64_t sw = a_.stride[2];
    const std::int64_t pw = a_.pad[2];
    if (sw == 1) {
      // The line from column pw; the columns around it are zero: with stride 1 every row takes
      // this path, which writes nothing else.
      std::copy(line, line + std::min(in_w, shape_.phase_length - pw), phases + pw);
      return;
    }
    // Phase q, position m: padded column m * sw + q, input column m * sw + q - pw.
    for (std::int64_t q = 0; q < sw; ++q) {
      float* phase = phases + q * shape_.phase_length;
      for (std::int64_t m = 0; m < shape_.phase_length; ++m) {
        const std::int64_t column = m * sw + q - pw;
        phase[m] = column >= 0 && column < in_w ? line[column] : 0.0f;
      }
    }
  }

  const Tensor& x_;
  Axes3d a_;
  ThinShape shape_{};
  std::vector<float> rows_;  // zero-initialised: the padding columns stay 0
  std::vector<const float*> prepared_;
  std::vector<const float*> held_;  // per slot: the input row it holds a copy of, or null
};

// y = conv(x) + bias for a thin convolution (thin() below); `weights` as thin_row reads them.
// Whether thin_convolution applies these post-ops itself, to each row while it is in cache:
// relu, leaky relu and tanh (tanh_values: the bytes of tanh_by_hand).
bool activates_rows(const std::vector<PostOp>& ops) {
  return std::all_of(ops.begin(), ops.end(), [](const PostOp& op) {
    return op.type == LayerType::relu || op.type == LayerType::leaky_relu ||
           op.type == LayerType::tanh;
  });
}

// `ops` (activates_rows) on `count` values in place, one after another: relu as v > 0 ? v : 0,
// leaky relu as v > 0 ? v : alpha * v (the naive twins' definitions).
void activate_row(const std::vector<PostOp>& ops, float* values, std::int64_t count) {
  for (const PostOp& op : ops) {
    if (op.type == LayerType::tanh) {
      detail::tanh_values(values, values, count);
      continue;
    }
    const float alpha = op.type == LayerType::leaky_relu ? op.alpha : 0.0f;
    for (std::int64_t i = 0; i < count; ++i) {
      const float v = values[i];
      values[i] = core::select_bits(v > 0.0f, v, alpha * v);  // vector code, not a branch
    }
  }
}

// The thin rows of every output row into y, then `ops` (activates_rows) on each row's outputs.
void thin_convolution(const ConvolutionParams& p, const Tensor& x, const float* weights,
                      const float* bias, const std::vector<PostOp>& ops, Tensor& y, int threads) {
  const std::int64_t batch = x.dim(0);
  const ThinKernel kernel = thin_kernel();
#pragma omp parallel num_threads(threads)
  {
    ThinRows rows(p, x, y.dims());
    const auto [out_d, out_h, out_w] = rows.axes().out;
    const std::int64_t out_plane = out_d * out_h * out_w;
    const std::int64_t out_channels = rows.shape().out_channels;
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < batch * out_d * out_h; ++row) {
      const std::int64_t n = row / (out_d * out_h);
      const std::int64_t od = row / out_h % out_d;
      const std::int64_t oh = row % out_h;
      float* out = y.data() + n * out_channels * out_plane + (od * out_h + oh) * out_w;
      const float* const* prepared = rows.prepare(n, od, oh);
      rows.prefetch_next(n, od, oh);
      thin_rows(prepared, weights, bias, out, out_plane, rows.shape(), kernel);
      for (std::int64_t oc = 0; oc < out_channels && !ops.empty(); ++oc) {
        activate_row(ops, out + oc * out_plane, out_w);
      }
    }
  }
}

// thin_convolution (output dims `conv_dims`), then tanh where `tanh`, then the fused pooling
// into y, one row of y at a time: the convolution's rows its windows cover are made into a
// buffer on the thread, activated there and pooled by pool_tile_row, as the layers one after
// another would (the same operations in the same order, so the same bytes), the convolution's
// output never written out.
void thin_convolution_pooled(const ConvolutionParams& p, const Tensor& x, const float* weights,
                             const float* bias, bool tanh, const FusedPool& pool,
                             const Dims& conv_dims, Tensor& y, int threads) {
  const std::int64_t batch = x.dim(0);
  const ThinKernel kernel = thin_kernel();
  std::array<std::int64_t, 3> window{1, 1, 1};
  std::copy(pool.kernel.begin(), pool.kernel.end(), window.end() - std::ssize(pool.kernel));
  const auto [wd, wh, ww] = window;
  const Axes3d pooled = axes_3d(p, x, y.dims());
  const auto [pool_d, pool_h, pool_w] = pooled.out;
  const std::int64_t pool_plane = pool_d * pool_h * pool_w;
#pragma omp parallel num_threads(threads)
  {
    ThinRows rows(p, x, conv_dims);
    const std::int64_t out_w = rows.axes().out[2];
    const std::int64_t out_channels = rows.shape().out_channels;
    // The wd x wh convolution rows of one row of windows: [wd, wh, out_channels, out_w].
    const std::int64_t row_values = out_channels * out_w;
    std::vector<float> conv(static_cast<std::size_t>(wd * wh * row_values));
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < batch * pool_d * pool_h; ++row) {
      const std::int64_t n = row / (pool_d * pool_h);
      const std::int64_t pd = row / pool_h % pool_d;
      const std::int64_t ph = row % pool_h;
      for (std::int64_t a = 0; a < wd; ++a) {
        for (std::int64_t b = 0; b < wh; ++b) {
          thin_rows(rows.prepare(n, pd * wd + a, ph * wh + b), weights, bias,
                    conv.data() + (a * wh + b) * row_values, out_w, rows.shape(), kernel);
        }
      }
      if (tanh) {
        detail::tanh_values(conv.data(), conv.data(), std::ssize(conv));
      }
      float* out = y.data() + n * out_channels * pool_plane + (pd * pool_h + ph) * pool_w;
      for (std::int64_t c = 0; c < out_channels; ++c) {
        detail::pool_tile_row(conv.data() + c * out_w, out + c * pool_plane, pool_w, window,
                              wh * row_values, row_values, pool.type == LayerType::max_pool);
      }
    }
  }
}

// The convolutions thin_convolution runs: 1 or 2 input channels (those whose weight gradient is
// summed directly too) into a number of channels that is not a multiple of 8, no groups or
// dilation, and no fused residual add. oneDNN's kernels do well with whole blocks of 8 output
// channels (measured: 1->8 3x3x3 at 65-73 GFLOP/s, 1->32 3x3 at 100, against 44 and 30 here)
// and badly without (1->6 5x5, LeNet-5's first layer: 4-6 ms for a batch of 256, 1.7 ms here).
// In inference where the engine's AVX-512 kernels run, also up to 16 input channels into fewer
// than 16: oneDNN's AVX-512 kernels fill vectors of 16 channels, so 8 run at 40 % of this
// machine's peak (the bundled CT model's full-resolution 8 -> 8 and 16 -> 8 3x3x3 at 217-224
// GFLOP/s of 532, its 8 -> 12 head at 83). The thin rows run about as fast, on PyTorch's layout,
// so the reorders around such layers go (the CT model's forward: 15 % less time). Not from more
// input channels: those come from a layer that writes oneDNN's layouts (a 32 -> 3 head after a
// 32-channel convolution: the reorder of its input costs more than the head).
bool thin(const ConvolutionParams& p, bool transposed, const std::vector<PostOp>& post_ops,
          bool inference) {
  const auto rank = p.kernel_size.size();
  if (transposed || p.groups != 1 || (rank != 2 && rank != 3) || p.dilation != Dims(rank, 1) ||
      std::any_of(post_ops.begin(), post_ops.end(),
                  [](const PostOp& op) { return op.type == LayerType::add; })) {
    return false;
  }
  return (p.in_channels <= 2 && p.out_channels % 8 != 0) ||
         (inference && detail::avx512_kernels() && p.in_channels <= 16 && p.out_channels < 16);
}

// In training the weights change every step: forward and backward read oneDNN-layout copies
// (WeightBridge), refreshed by weights_changed(), so both keep the blocked kernels that the
// inference path uses; the refresh is one reorder per weight, small next to the convolutions.
class DnnlConvolution final : public ConvolutionLayer {
 public:
  using ConvolutionLayer::ConvolutionLayer;

  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& ctx = *ctx_;
    if (pointwise_) {
      detail::pointwise_forward(pointwise_shape(), src[0]->data(), weight("weight").data(),
                                params().bias ? weight("bias").data() : nullptr, dst.data(),
                                ctx.threads);
      return;
    }
    if (thin_ && fused_pool()) {
      const bool tanh = !post_ops().empty();  // fuse_pool takes tanh alone
      thin_convolution_pooled(params(), *src[0], thin_weights_.data(),
                              params().bias ? weight("bias").data() : nullptr, tanh, *fused_pool(),
                              convolved_dims(src[0]->dims()), dst, ctx.threads);
      return;
    }
    if (thin_) {
      const bool by_rows = activates_rows(post_ops());
      thin_convolution(params(), *src[0], thin_weights_.data(),
                       params().bias ? weight("bias").data() : nullptr,
                       by_rows ? post_ops() : std::vector<PostOp>{}, dst, ctx.threads);
      if (by_rows) {
        return;
      }
      // The fused activations, in place: tanh by hand, the others by oneDNN.
      const dnnl::memory values(detail::plain_desc(dst.dims()), ctx.engine, dst.data());
      for (std::size_t a = 0; a < activations_.size(); ++a) {
        if (post_ops()[a].type == LayerType::tanh) {
          ctx.stream.wait();
          detail::tanh_by_hand(dst.data(), dst.data(), dst.size(), ctx.threads);
        } else {
          activations_[a].execute(ctx.stream, {{DNNL_ARG_SRC, values}, {DNNL_ARG_DST, values}});
        }
      }
      ctx.stream.wait();
      return;
    }
    if (inner_) {
      // [N, OC, 1, 1(, 1)] is [N, OC]; the trailing tanh post-ops by hand, in place.
      inner_.forward(*src[0], dst.data(), ctx);
      for (std::size_t t = 0; t < post_ops().size(); ++t) {
        detail::tanh_by_hand(dst.data(), dst.data(), dst.size(), ctx.threads);
      }
      return;
    }
    if (doubling_) {
      detail::doubling_convolution(*src[0], weight("weight").data(),
                                   params().bias ? weight("bias").data() : nullptr, dst,
                                   ctx.threads);
      return;
    }
    if (unpool_forward_ && train_blocked_out_) {
      detail::unpool_convolution_blocked(*src[0], weight("weight").data(),
                                         params().bias ? weight("bias").data() : nullptr, dst,
                                         params().kernel_size, ctx.threads);
      return;
    }
    if (unpool_ || unpool_forward_) {
      detail::unpool_convolution(*src[0], weight("weight").data(),
                                 params().bias ? weight("bias").data() : nullptr, dst,
                                 params().kernel_size, ctx.threads);
      return;
    }
    if (subpixel_) {
      // Each phase into the context's bridge_out (the input's reorder is made once, in
      // bridge_in), then into its samples of dst.
      const dnnl::memory in = src_.in(*src[0], ctx);
      const std::size_t rank = params().kernel_size.size();
      const auto run_phase = [&](const Phase& ph, float* values) {
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, in},
            {DNNL_ARG_WEIGHTS, ph.weights.memory()},
            {DNNL_ARG_DST, dnnl::memory(ph.dst, ctx.engine, values)}};
        if (params().bias) {
          args.emplace(DNNL_ARG_BIAS, bias_.memory());
        }
        detail::Scratchpad::execute(ph.primitive, ph.scratchpad, std::move(args), ctx);
      };
      if (paired_phases()) {
        // Phases (a, b, 0) and (a, b, 1) side by side, then the output rows they share.
        const std::size_t bytes = phases_.front().dst.get_size();
        auto* values = static_cast<float*>(ctx.bridge_out.get(2 * bytes, ctx.single_pass));
        float* odd = values + bytes / sizeof(float);
        for (std::size_t p = 0; p < phases_.size(); p += 2) {
          run_phase(phases_[p], values);
          run_phase(phases_[p + 1], odd);
          const auto phase = static_cast<std::int64_t>(p);
          interleave_pair(
              values, odd, static_cast<std::int64_t>(bytes / sizeof(float)) / dst.dim(0),
              rank == 3 ? phase_bit(phase, 0, rank) : 0, phase_bit(phase, rank - 2, rank), dst,
              rank, subpixel_block_, ctx.threads);
        }
        return;
      }
      for (const Phase& ph : phases_) {
        auto* values = static_cast<float*>(ctx.bridge_out.get(ph.dst.get_size(), ctx.single_pass));
        run_phase(ph, values);
        interleave_phase(values, ph.phase, dst, rank, subpixel_block_, ctx.threads);
      }
      return;
    }
    // A linked layer leaves the shared scratch its bridge would have used: in a single pass it
    // is given back (as a smaller request would shrink it), so that no large copy another layer
    // left there is held longer than without the link.
    if (blocked_in_) {
      ctx.bridge_in.get(0, ctx.single_pass);
    }
    if (blocked_out_) {
      ctx.bridge_out.get(0, ctx.single_pass);
    }
    const auto src_memory =
        blocked_in_ ? dnnl::memory(src_desc_, ctx.engine, const_cast<float*>(src[0]->data()))
                    : src_.in(*src[0], ctx);
    // With a fused add, the primitive adds to what the destination holds: the residual, copied
    // as it is where it comes blocked, reordered into the blob where the output goes blocked.
    dnnl::memory dst_memory;
    if (blocked_out_) {
      dst_memory = dnnl::memory(dst_desc_, ctx.engine, dst.data());
      if (adds_residual() && !residual_blocked_) {
        dst_.into_wanted(*src[1], dst_memory, ctx);
      }
    } else if (adds_residual() && !residual_blocked_) {
      dst_memory = dst_.out_holding(*src[1], dst, ctx);
    } else {
      dst_memory = dst_.out(dst, ctx);
    }
    if (residual_blocked_ && !stem_) {
      std::memcpy(dst_memory.get_data_handle(), src[1]->data(), dst_desc_.get_size());
    }
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src_memory},
                                               {DNNL_ARG_WEIGHTS, weights_.memory()},
                                               {DNNL_ARG_DST, dst_memory}};
    if (params().bias) {
      args.emplace(DNNL_ARG_BIAS, bias_.memory());
    }
    if (stem_) {
      // The residual read where it is blocked, else from the destination that holds it.
      auto* const out = static_cast<float*>(dst_memory.get_data_handle());
      detail::stem_convolution(static_cast<const float*>(src_memory.get_data_handle()),
                               src[0]->dims(), weight("weight").data(),
                               params().bias ? weight("bias").data() : nullptr,
                               residual_blocked_ ? src[1]->data()
                               : adds_residual() ? out
                                                 : nullptr,
                               out, dst_dims(), params(), ctx.threads);
    } else {
      detail::Scratchpad::execute(primitive_, scratchpad_, std::move(args), ctx);
    }
    if (tanh_after_ > 0) {
      // The trailing tanh left out of the primitive's post-ops, by hand on its output in
      // whatever layout it has (the zeros that pad a blocked layout's channels stay zeros).
      ctx.stream.wait();
      auto* values = static_cast<float*>(dst_memory.get_data_handle());
      const auto count =
          static_cast<std::int64_t>(dst_memory.get_desc().get_size() / sizeof(float));
      for (int t = 0; t < tanh_after_; ++t) {
        detail::tanh_by_hand(values, values, count, ctx.threads);
      }
    }
    if (!blocked_out_) {
      dst_.out_done(dst, ctx);
    }
    ctx.stream.wait();
  }

  bool runs_thin_rows() const override { return prepared() && thin_; }
  bool runs_doubling() const override { return prepared() && doubling_; }
  bool runs_stem() const override { return prepared() && stem_; }
  bool runs_pointwise() const override { return prepared() && pointwise_; }
  bool runs_unpool() const override { return prepared() && (unpool_ || unpool_forward_); }

  std::int64_t training_output_block() const override {
    // An up-convolution by hand writes and reads blocks of 16 channels (unpools_blocked).
    if ((!trains_by_primitive() && !unpools_blocked()) || train_blocked_out_) {
      return 0;
    }
    const std::int64_t block = blocked_layout(dst_desc_, dst_dims()).second;
    if (unpools_blocked() && block != 16) {
      return 0;
    }
    return block > 0 && data_diff_dst_desc_ == dst_desc_ ? block : 0;
  }

  std::int64_t training_input_block() const override {
    if (!trains_by_primitive() || train_blocked_in_) {
      return 0;
    }
    const std::int64_t block = blocked_layout(src_desc_, src_dims()[0]).second;
    return block > 0 && data_diff_src_desc_ == src_desc_ ? block : 0;
  }

  // The bridges are rebuilt with the blocked layout on the blob's side: none is left to reorder
  // but the weight pass's, where it reads another layout.
  void write_blocked_in_training() override {
    CAJAL_CHECK(training_output_block() > 0) << label() << ": no blocked output to write";
    const auto& engine = ctx_->engine;
    dst_ = detail::Bridge(dst_desc_, dst_desc_, engine, &ctx_->bridge_out);
    data_diff_dst_ = detail::Bridge(dst_desc_, data_diff_dst_desc_, engine, &ctx_->bridge_in);
    if (backward_weights_) {
      weights_diff_dst_ =
          detail::Bridge(dst_desc_, weights_diff_dst_desc_, engine, &ctx_->bridge_in);
    }
    train_blocked_out_ = true;
  }

  void read_blocked_in_training() override {
    CAJAL_CHECK(training_input_block() > 0) << label() << ": no blocked input to read";
    const auto& engine = ctx_->engine;
    src_ = detail::Bridge(src_desc_, src_desc_, engine);
    data_diff_src_ = detail::Bridge(src_desc_, data_diff_src_desc_, engine, &ctx_->bridge_out);
    if (backward_weights_) {
      weights_src_ = detail::Bridge(src_desc_, weights_src_desc_, engine, &ctx_->bridge_out);
    }
    train_blocked_in_ = true;
  }

  void copy_plain(const Tensor& blob, float* plain) const override {
    CAJAL_CHECK(blocked_out_ && blob.dims() == dst_dims())
        << label() << ": copy_plain of " << to_string(blob.dims()) << " without a blocked link";
    dst_.to_plain(blob.data(), plain, *ctx_);
    ctx_->stream.wait();
  }

  bool pass_blocked_to(const std::vector<BlockedReader>& readers) override {
    if (!may_write_blocked() || !read_as(dst_desc_, readers)) {
      return false;
    }
    blocked_out_ = true;
    link_readers(readers);
    return true;
  }

  bool pass_blocked_through(Layer& middle, const std::vector<BlockedReader>& readers) override {
    const auto [layout, block] = blocked_layout(dst_desc_, dst_dims());
    if (block == 0 || !may_write_blocked() ||
        !read_as(detail::tagged_desc(middle.dst_dims(), layout), readers)) {
      return false;
    }
    auto* const norm = dynamic_cast<NormalizationLayer*>(&middle);
    auto* const pool = dynamic_cast<PoolingLayer*>(&middle);
    if (norm != nullptr ? !norm->take_blocked(block)
                        : pool == nullptr || !pool->take_blocked(block)) {
      return false;
    }
    blocked_out_ = true;
    link_readers(readers);
    return true;
  }

  bool pass_blocked_into(Layer& reader) override {
    const auto block = blocked_layout(dst_desc_, dst_dims()).second;
    auto* const pool = dynamic_cast<PoolingLayer*>(&reader);
    if (block == 0 || !may_write_blocked() || pool == nullptr || !pool->read_blocked(block)) {
      return false;
    }
    blocked_out_ = true;
    return true;
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    CAJAL_CHECK(training() && prepared()) << label() << ": backward needs a training prepare()";
    CAJAL_CHECK(diff_dst.dims() == dst_dims() && diff_src.size() == 1) << label();
    const auto& ctx = *ctx_;
    if (pointwise_) {
      if (diff_src[0] != nullptr) {
        CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
        detail::pointwise_backward_data(pointwise_shape(), diff_dst.data(), weight("weight").data(),
                                        diff_src[0]->data(), ctx.threads);
      }
      detail::pointwise_backward_weights(
          pointwise_shape(), src[0]->data(), diff_dst.data(), grad("weight").data(),
          params().bias ? grad("bias").data() : nullptr, ctx.threads);
      return;
    }
    if (inner_) {
      if (diff_src[0] != nullptr) {
        CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
      }
      inner_.backward(*src[0], diff_dst.data(), diff_src[0], grad("weight"),
                      params().bias ? &grad("bias") : nullptr, ctx);
      return;
    }
    if (unpools_blocked() && params().out_channels == 16) {
      // Into one block of 16 channels oneDNN's gradients run at a third of this machine's peak
      // (bench/train's U-Net, 32 -> 16 at 64^3: data 2.1, weights 1.5 ms; by hand 0.8 and 1.0
      // warm); into more they did better in the net than these (64 -> 32 at 32^3: 0.9-1.1 ms
      // against 1.1-1.3). diff_dst in blocks of 16: as it comes where linked to a concat, else
      // by one reorder.
      const dnnl::memory dy = data_diff_dst_.in(diff_dst, ctx);
      ctx.stream.wait();
      const auto* blocks = static_cast<const float*>(dy.get_data_handle());
      if (diff_src[0] != nullptr) {
        CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
      }
      detail::unpool_backward_blocked(*src[0], blocks, weight("weight").data(), diff_src[0],
                                      grad("weight").data(),
                                      params().bias ? grad("bias").data() : nullptr,
                                      params().out_channels, params().kernel_size, ctx.threads);
      return;
    }
    const bool data = diff_src[0] != nullptr;
    if (data) {
      CAJAL_CHECK(diff_src[0]->dims() == src_dims()[0]) << label() << ": diff_src dims";
      const auto diff_src_memory = data_diff_src_.out(*diff_src[0], ctx);
      const dnnl::memory dy = data_diff_dst_.in(diff_dst, ctx);
      backward_data_.execute(
          ctx.stream, {{data_by_forward_ ? DNNL_ARG_SRC : DNNL_ARG_DIFF_DST, dy},
                       {DNNL_ARG_WEIGHTS, data_weights_.memory()},
                       {data_by_forward_ ? DNNL_ARG_DST : DNNL_ARG_DIFF_SRC, diff_src_memory}});
      data_diff_src_.out_done(*diff_src[0], ctx);
    }
    if (direct_weights_) {
      direct_weight_gradient(params(), *src[0], diff_dst, grad("weight"),
                             params().bias ? &grad("bias") : nullptr, ctx.threads);
      ctx.stream.wait();
      return;
    }
    if (blocked_weights_) {
      const dnnl::memory x = thin_ ? src_.in(*src[0], ctx) : src_.held(*src[0], ctx);
      const dnnl::memory dy =
          data ? data_diff_dst_.held(diff_dst, ctx) : data_diff_dst_.in(diff_dst, ctx);
      ctx.stream.wait();
      const Dims& in = src_dims()[0];
      const Dims& out = dst_dims();
      detail::BlockedWeightGradient g{.batch = in[0],
                                      .in_channels = params().in_channels,
                                      .out_channels = params().out_channels,
                                      .in = {in[2], in[3], in[4]},
                                      .out = {out[2], out[3], out[4]},
                                      .kernel = axes_of(params().kernel_size),
                                      .pad = axes_of(params().padding)};
      detail::blocked_weight_gradient(g, static_cast<const float*>(x.get_data_handle()),
                                      static_cast<const float*>(dy.get_data_handle()),
                                      grad("weight").data(),
                                      params().bias ? grad("bias").data() : nullptr, ctx.threads);
      return;
    }
    // Where a layout is the same, the copies that forward() and the data pass reordered.
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC,
         src_reused_ && !unpool_forward_ ? src_.held(*src[0], ctx) : weights_src_.in(*src[0], ctx)},
        {DNNL_ARG_DIFF_DST, data && diff_dst_reused_ ? data_diff_dst_.held(diff_dst, ctx)
                                                     : weights_diff_dst_.in(diff_dst, ctx)},
        {DNNL_ARG_DIFF_WEIGHTS, diff_weights_.memory()}};
    if (params().bias) {
      args.emplace(DNNL_ARG_DIFF_BIAS, diff_bias_.memory());
    }
    backward_weights_.execute(ctx.stream, args);
    diff_weights_.add_to(grad("weight"), ctx);
    if (params().bias) {
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
    if (thin_) {
      // [OC, IC * KD * KH * KW] -> [IC * KD * KH * KW, OC]
      const Tensor& w = weight("weight");
      const std::int64_t oc_count = params().out_channels;
      const std::int64_t taps = w.size() / oc_count;
      thin_weights_.resize(static_cast<std::size_t>(w.size()));
      for (std::int64_t oc = 0; oc < oc_count; ++oc) {
        for (std::int64_t t = 0; t < taps; ++t) {
          thin_weights_[static_cast<std::size_t>(t * oc_count + oc)] = w.data()[oc * taps + t];
        }
      }
      if (!training()) {
        return;
      }
    }
    if (unpool_ || doubling_ || pointwise_) {
      return;  // read from weight() at each run
    }
    if (inner_) {
      inner_.refresh(weight("weight"), params().bias ? &weight("bias") : nullptr, *ctx_);
      return;
    }
    if (subpixel_) {
      const std::size_t rank = params().kernel_size.size();
      for (Phase& ph : phases_) {
        ph.weights.refresh(ph.phase < 0
                               ? combined_phase_weights(weight("weight"), rank, subpixel_)
                               : phase_weights(weight("weight"), ph.phase, rank, subpixel_),
                           *ctx_);
      }
      if (params().bias) {
        // Each phase's channels take the same bias.
        const Tensor& b = weight("bias");
        Tensor repeated({phases_.front().phase < 0 ? b.size() << rank : b.size()});
        for (std::int64_t i = 0; i < repeated.size(); ++i) {
          repeated.data()[i] = b.data()[i % b.size()];
        }
        bias_.refresh(repeated, *ctx_);
      }
      return;
    }
    weights_.refresh(weight("weight"), *ctx_);
    if (params().bias) {
      bias_.refresh(weight("bias"), *ctx_);
    }
    if (training()) {
      data_weights_.refresh(data_by_forward_ ? flipped_weights(weight("weight")) : weight("weight"),
                            *ctx_);
    }
  }

  void build(const Context& context) override {
    ctx_ = context.impl();
    blocked_out_ = false;        // pass_blocked_to links anew after each prepare
    train_blocked_out_ = false;  // and Net::link_training_layouts
    train_blocked_in_ = false;
    backward_weights_ = {};
    doubling_ = false;
    stem_ = false;
    pointwise_ = false;
    inner_ = detail::InnerProduct();
    blocked_in_ = false;
    residual_blocked_ = false;
    primitive_ = dnnl::primitive();
    CAJAL_CHECK(!training() || post_ops().empty())
        << label() << ": fused post-ops have no backward; train with fuse_post_ops off";
    unpool_ = !training() && unpools(params(), transposed()) && post_ops().empty();
    // In training too the forward is unpool_convolution's; the backward stays oneDNN's (its
    // primitives are built below, the forward one as their hint).
    // Into more channels, in whole blocks of 16, where the AVX-512 kernels run: there its blocked
    // twin writes a linked concat's blocks (bench/train's U-Net, 64 -> 32 at 32^3: 0.4 ms against
    // oneDNN's 1.5), and unlinked it gives the same bytes.
    unpool_forward_ = training() && post_ops().empty() &&
                      (unpools(params(), transposed()) ||
                       (params().out_channels % 16 == 0 && detail::avx512_kernels() &&
                        unpools(params(), transposed(), std::numeric_limits<std::int64_t>::max())));
    if (unpool_) {
      return;  // no primitive: unpool_convolution reads the weights in PyTorch's layout
    }
    // Into few channels oneDNN's sub-pixel convolutions waste most of their vectors (the MONAI
    // UNet's last layer, 32 -> 2: one 2x2x2 convolution into 16 channels for all phases, 57 % of
    // it zeros, after a reorder of its input): doubling_convolution runs it on PyTorch's layout.
    doubling_ = !training() && post_ops().empty() && detail::avx512_kernels() &&
                subpixel_kernel(params(), transposed()) == 3 &&
                params().out_channels <= detail::kDoublingMaxOutChannels;
    if (doubling_) {
      return;
    }
    // oneDNN's kernels compute it in blocks of 16 output channels, most of them zeros, after
    // reordering its input and its output's gradient to that layout (pointwise.h).
    pointwise_ = training() && post_ops().empty() && pointwise(params(), transposed());
    if (pointwise_) {
      return;  // no primitive: the weights are read in PyTorch's layout
    }
    if (covers_input(params(), transposed(), src_dims()[0]) && !fused_pool() &&
        std::all_of(post_ops().begin(), post_ops().end(),
                    [](const PostOp& op) { return op.type == LayerType::tanh; })) {
      inner_ = detail::InnerProduct(src_dims()[0], params().out_channels, params().bias, training(),
                                    ctx_->engine);
      refresh_weights();
      return;
    }
    // With a 2-tap kernel one convolution for all phases wastes nothing.
    const std::int64_t kernel =
        training() || !post_ops().empty() ? 0 : subpixel_kernel(params(), transposed());
    subpixel_ =
        kernel != 0 &&
                ((kernel == 3 && params().out_channels % 8 == 0 && build_subpixel(kernel, true)) ||
                 build_subpixel(kernel, false))
            ? kernel
            : 0;
    if (subpixel_) {
      refresh_weights();
      return;
    }
    thin_ = thin(params(), transposed(), post_ops(), !training());
    CAJAL_CHECK(!fused_pool() || (thin_ && !training()))
        << label() << ": a fused pooling runs only in inference, by thin_convolution";
    activations_.clear();
    if (thin_ && !training()) {
      // No convolution primitive: thin_convolution, with the fused activations on its rows
      // (activates_rows) or each after it in place.
      const auto values = detail::plain_desc(dst_dims());
      for (const auto& op : activates_rows(post_ops()) ? std::vector<PostOp>{} : post_ops()) {
        if (op.type == LayerType::tanh) {
          activations_.emplace_back();  // by hand in forward()
          continue;
        }
        const auto [alg, alpha, beta] = detail::eltwise_algorithm(op.type, op.alpha);
        const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, values,
                                               alpha, beta);
        activations_.emplace_back(dnnl::eltwise_forward::primitive_desc(desc, ctx_->engine));
      }
      refresh_weights();
      return;
    }
    const auto geometry = make_geometry();
    if (transposed()) {
      build_with<TransposedKinds>(geometry);
    } else {
      build_with<DirectKinds>(geometry);
    }
    refresh_weights();
    // One channel into 16 (a U-Net's first layer on a CT or MR image): oneDNN's kernels run it
    // at a third of this machine's peak (MONAI's 1 -> 16 stride-2 stem at 96^3, 0.58 ms and, with
    // its residual add, 0.76), stem_convolution at twice that, in the channels-last layout
    // oneDNN chose for the layers after it, its primitive and bridges kept as they are.
    const auto rank = params().kernel_size.size();
    stem_ =
        !training() && !transposed() && detail::avx512_kernels() && detail::stem_takes(params()) &&
        tanh_after_ == 0 &&
        std::all_of(post_ops().begin(), post_ops().end(),
                    [](const PostOp& op) { return op.type == LayerType::add; }) &&
        post_ops().size() <= 1 &&
        dst_desc_ == detail::tagged_desc(dst_dims(), rank == 3 ? dnnl::memory::format_tag::ndhwc
                                                               : dnnl::memory::format_tag::nhwc) &&
        src_desc_.get_size() == detail::plain_desc(src_dims()[0]).get_size();
  }

  // For a transposed convolution of subpixel_kernel() `kernel`. `split` (3-tap kernels): one
  // convolution per phase of the output (stride 1, 1 or 2 taps per axis, 2 with a sample of zero
  // padding after the end), for OC a multiple of 8; else one for all phases
  // (combined_phase_weights: 2^rank * OC channels, fewer wasted in blocks of 8 than OC alone; the
  // MONAI UNet's last 32 -> 2 up-convolution at 64^3 takes about 14 ms instead of 41). Outputs
  // blocked by native_channel_block() channels for interleave_phase. False, and nothing kept, when
  // oneDNN has only its reference kernel for one of them (the phases read the input in the first
  // one's layout).
  bool build_subpixel(std::int64_t kernel, bool split) {
    using dnnl::memory;
    const auto& p = params();
    const auto rank = p.kernel_size.size();
    const auto f32 = memory::data_type::f32;
    const Dims& in = src_dims()[0];
    const std::int64_t channels = split ? p.out_channels : p.out_channels << rank;
    memory::dims out{in[0], channels};
    out.insert(out.end(), in.begin() + 2, in.end());
    const std::int64_t block = native_channel_block();
    const memory::desc dst(
        out, f32,
        block == 16 ? (rank == 3 ? memory::format_tag::nCdhw16c : memory::format_tag::nChw16c)
                    : (rank == 3 ? memory::format_tag::nCdhw8c : memory::format_tag::nChw8c));
    const memory::desc bias =
        p.bias ? memory::desc({channels}, f32, memory::format_tag::a) : memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    std::vector<Phase> phases;
    memory::desc src;
    for (std::int64_t phase = split ? 0 : -1; phase < (split ? std::int64_t{1} << rank : 0);
         ++phase) {
      memory::dims weight_dims{channels, p.in_channels};
      memory::dims after;
      for (std::size_t axis = 0; axis < rank; ++axis) {
        after.push_back(kernel == 2 ? 0 : phase < 0 ? 1 : phase_bit(phase, axis, rank));
        weight_dims.push_back(kernel == 2 ? 1 : after.back() + 1);
      }
      // The first phase picks the input's layout, the others read the same.
      const dnnl::convolution_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
          phases.empty() ? memory::desc(in, f32, memory::format_tag::any) : src,
          memory::desc(weight_dims, f32, memory::format_tag::any), bias, dst, memory::dims(rank, 1),
          memory::dims(rank, 0), memory::dims(rank, 0), after);
      const dnnl::convolution_forward::primitive_desc pd(desc, attr, ctx_->engine);
      if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) {
        return false;  // oneDNN's reference kernel: slower than the transposed one by far
      }
      if (phases.empty()) {
        src = pd.src_desc();
        if (p.bias) {
          bias_ =
              detail::WeightBridge(detail::plain_desc({channels}), pd.bias_desc(), ctx_->engine);
        }
      }
      phases.push_back(
          {phase, dnnl::convolution_forward(pd),
           detail::WeightBridge(detail::plain_desc(Dims(weight_dims.begin(), weight_dims.end())),
                                pd.weights_desc(), ctx_->engine),
           dst, pd.scratchpad_desc()});
      ctx_->scratchpad.plan(pd.scratchpad_desc().get_size());
    }
    src_ = detail::Bridge(detail::plain_desc(in), src, ctx_->engine, &ctx_->bridge_in);
    phases_ = std::move(phases);
    subpixel_block_ = block;
    ctx_->bridge_out.plan(paired_phases() ? 2 * dst.get_size() : dst.get_size());
    return true;
  }

  Geometry make_geometry() const {
    const auto& p = params();
    using dnnl::memory;
    using tag = memory::format_tag;
    const auto any = tag::any;
    const auto f32 = memory::data_type::f32;
    // oneDNN's weights: [OC, IC, K...] or, grouped, [G, OC/G, IC/G, K...].
    memory::dims weight_dims{p.out_channels, p.in_channels};
    if (p.groups > 1) {
      weight_dims = {p.groups, p.out_channels / p.groups, p.in_channels / p.groups};
    }
    weight_dims.insert(weight_dims.end(), p.kernel_size.begin(), p.kernel_size.end());
    Geometry g;
    for (const auto d : p.dilation) {
      g.dilation.push_back(d - 1);
    }
    g.stride.assign(p.stride.begin(), p.stride.end());
    g.padding.assign(p.padding.begin(), p.padding.end());
    g.src = memory::desc(src_dims()[0], f32, any);
    g.weights = memory::desc(weight_dims, f32, any);
    g.bias = p.bias ? memory::desc({p.out_channels}, f32, tag::a) : memory::desc();
    g.dst = memory::desc(dst_dims(), f32, any);
    // In training, where oneDNN runs its AVX-512 kernels, a 3D convolution into 8 channels runs
    // channels-last: on the layout it picks the output's 8 channels are padded to a block of 16
    // (the CT model's 16 -> 8 at 2x32x96^2: 22.8 ms against 19.3 for its brgconv on ndhwc, whose
    // weight pass reads ndhwc already; bench/train's CT shape 0.273 -> 0.264 s a step).
    if (training() && !transposed() && p.kernel_size.size() == 3 && p.groups == 1 &&
        detail::onednn_runs_avx512() && p.out_channels == 8 && p.in_channels % 8 == 0) {
      g.src = memory::desc(src_dims()[0], f32, tag::ndhwc);
      g.dst = memory::desc(dst_dims(), f32, tag::ndhwc);
    }
    const bool grouped = p.groups > 1;
    const bool three_d = p.kernel_size.size() == 3;
    if (transposed()) {
      g.plain_weights = memory::desc(
          weight_dims, f32,
          grouped ? (three_d ? tag::giodhw : tag::giohw) : (three_d ? tag::iodhw : tag::iohw));
    } else {
      g.plain_weights = memory::desc(weight_dims, f32, detail::plain_tag(weight_dims.size()));
    }
    return g;
  }

  template <typename Kinds>
  void build_with(const Geometry& g) {
    const auto& engine = ctx_->engine;
    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    // A tanh at the end of the post-ops runs by hand after the primitive (detail::tanh_by_hand);
    // oneDNN's own, in the kernel or not, reads a table with gathers that are slow here.
    const std::vector<PostOp>& fused = post_ops();
    auto end = fused.end();
    while (end != fused.begin() && std::prev(end)->type == LayerType::tanh) {
      --end;
    }
    tanh_after_ = static_cast<int>(fused.end() - end);
    for (auto it = fused.begin(); it != end; ++it) {
      const PostOp& op = *it;
      if (op.type == LayerType::add) {
        ops.append_sum(1.0f);
        continue;
      }
      const auto [alg, alpha, beta] = detail::eltwise_algorithm(op.type, op.alpha);
      ops.append_eltwise(1.0f, alg, alpha, beta);
    }
    attr.set_post_ops(ops);
    if (!training()) {
      // Memory of its own for each run, freed after it (detail::Scratchpad).
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    }
    const auto prop =
        training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const typename Kinds::Forward::desc desc(prop, Kinds::algorithm, g.src, g.weights, g.bias,
                                             g.dst, g.stride, g.dilation, g.padding, g.padding);
    const typename Kinds::Forward::primitive_desc pd(desc, attr, engine);
    // In inference no layer reads another's reordered copies: they share the context's scratch.
    // In training the input's copy is held for the backward; the output's, and the backward's
    // copies (below), are dead once the layer's forward or backward returns and share it too:
    // as memory of each layer's own they held half of a training step's peak (bench/train's CT
    // model shape: 1.45 -> 0.75 GB; the 64^3 U-Net 0.76 -> 0.53 GB). Copies alive at once take
    // different scratches: the gradient of the output in bridge_in (read by the data pass and,
    // reused, by the weight pass), the gradient of the input and the weight pass's copy of the
    // input in bridge_out.
    src_ = detail::Bridge(detail::plain_desc(src_dims()[0]), pd.src_desc(), engine,
                          training() ? nullptr : &ctx_->bridge_in);
    dst_ = detail::Bridge(detail::plain_desc(dst_dims()), pd.dst_desc(), engine, &ctx_->bridge_out);
    weights_ = detail::WeightBridge(g.plain_weights, pd.weights_desc(), engine);
    const auto plain_bias = detail::plain_desc({params().out_channels});
    if (params().bias) {
      bias_ = detail::WeightBridge(plain_bias, pd.bias_desc(), engine);
    }
    primitive_ = typename Kinds::Forward(pd);
    src_desc_ = pd.src_desc();
    dst_desc_ = pd.dst_desc();
    scratchpad_ = training() ? dnnl::memory::desc() : pd.scratchpad_desc();
    ctx_->scratchpad.plan(scratchpad_.get_size());
    if (!training()) {
      return;
    }
    // Backward descriptors take the forward one as hint.
    const typename Kinds::BackwardData::desc data_desc(Kinds::algorithm, g.src, g.weights, g.dst,
                                                       g.stride, g.dilation, g.padding, g.padding);
    const typename Kinds::BackwardData::primitive_desc data_pd(data_desc, engine, pd);
    const bool sixteen = params().in_channels % 16 == 0 && params().out_channels == 16;
    data_by_forward_ = gradient_by_forward(params(), transposed()) &&
                       detail::onednn_runs_avx512() && (sixteen || params().out_channels == 8);
    if (data_by_forward_) {
      // The gradient of the input as a forward convolution of the output's gradient by the
      // flipped weights (see gradient_by_forward): on the data pass's layouts into one block of
      // 16, else on those the forward kernel picks.
      dnnl::memory::dims flipped = g.plain_weights.dims();
      std::swap(flipped[0], flipped[1]);
      dnnl::memory::dims padding = g.padding;
      for (std::size_t a = 0; a < padding.size(); ++a) {
        padding[a] = params().kernel_size[a] - 1 - padding[a];
      }
      const auto any = [](const dnnl::memory::desc& d) {
        return dnnl::memory::desc(d.dims(), d.data_type(), dnnl::memory::format_tag::any);
      };
      const dnnl::convolution_forward::desc flipped_desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
          sixteen ? data_pd.diff_dst_desc() : any(data_pd.diff_dst_desc()),
          dnnl::memory::desc(flipped, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any),
          sixteen ? data_pd.diff_src_desc() : any(data_pd.diff_src_desc()), g.stride, g.dilation,
          padding, padding);
      const dnnl::convolution_forward::primitive_desc flipped_pd(flipped_desc, engine);
      data_weights_ = detail::WeightBridge(detail::plain_desc(Dims(flipped.begin(), flipped.end())),
                                           flipped_pd.weights_desc(), engine);
      backward_data_ = dnnl::convolution_forward(flipped_pd);
      data_diff_dst_desc_ = flipped_pd.src_desc();
      data_diff_src_desc_ = flipped_pd.dst_desc();
    } else {
      data_weights_ = detail::WeightBridge(g.plain_weights, data_pd.weights_desc(), engine);
      backward_data_ = typename Kinds::BackwardData(data_pd);
      data_diff_dst_desc_ = data_pd.diff_dst_desc();
      data_diff_src_desc_ = data_pd.diff_src_desc();
    }
    data_diff_dst_ = detail::Bridge(detail::plain_desc(dst_dims()), data_diff_dst_desc_, engine,
                                    &ctx_->bridge_in);
    data_diff_src_ = detail::Bridge(detail::plain_desc(src_dims()[0]), data_diff_src_desc_, engine,
                                    &ctx_->bridge_out);
    // A 3D first layer of 1 or 2 channels into whole blocks of 16, unit stride, where oneDNN runs
    // its AVX-512 kernels: its weight gradient kernel for a first layer (PyTorch's layout in,
    // blocks of 16 out) takes 1.25 ms where the engine's loops took 2.19 (bench/train's U-Net, 1
    // -> 16 at 64^3), and reads the output's gradient in the blocks a batch norm after it gives
    // (Net::link_training_layouts).
    const auto rank = params().kernel_size.size();
    const bool first_layer_blocks =
        !transposed() && rank == 3 && params().groups == 1 && params().in_channels <= 2 &&
        params().out_channels % 16 == 0 && params().stride == Dims(rank, 1) &&
        params().dilation == Dims(rank, 1) && detail::onednn_runs_avx512();
    direct_weights_ = sums_weight_gradient_directly(params(), transposed()) && !first_layer_blocks;
    if (direct_weights_) {
      return;
    }
    // 3D weight gradients the engine's own loop sums from the blocked copies that forward and the
    // data pass make (see blocked_weight_gradient.h).
    const auto blocked = [](const dnnl::memory::dims& dims) {
      return dnnl::memory::desc(dims, dnnl::memory::data_type::f32,
                                dnnl::memory::format_tag::nCdhw8c);
    };
    blocked_weights_ =
        !transposed() && g.src.dims().size() == 5 &&
        detail::fits_blocked_weight_gradient(
            params().in_channels, params().out_channels, params().groups,
            axes_of(params().kernel_size), axes_of(params().stride), axes_of(params().dilation)) &&
        pd.src_desc() == blocked(pd.src_desc().dims()) &&
        data_diff_dst_desc_ == blocked(data_diff_dst_desc_.dims());
    if (blocked_weights_) {
      return;
    }

    // Without oneDNN's AVX-512 kernels the other 3D convolutions' weight gradient reads src and
    // diff_dst channels-last: oneDNN v2.6 has no AVX2 kernel for it and falls back to gemm, which
    // takes about half the time on ndhwc as on the blocked or plain layouts it picks itself (16->16
    // channels at 64^3: 54 ms against 111; 32->16: 128 against 249; 64->64 at 16^3: 7.6 against
    // 15.6). 2D keeps its jit:avx2 kernel there. With them, 2D convolutions whose channels are not
    // whole blocks of 16 read nhwc too: oneDNN picks 8-channel blocks and its AVX2 kernel, and its
    // AVX-512 one on nhwc takes a third of the time (LeNet-5's C3, 6 -> 16 5x5 on 64x6x14x14:
    // 0.099 ms against 0.27; bench/train's epoch 1.58-1.60 -> 1.38-1.40 s). With them and channels
    // in whole blocks of 16, its jit:avx512_core kernel is faster on the 16-channel blocks it
    // picks, which the forward and data passes already hold (no reorders of src and diff_dst):
    // bench/train's 3D U-Net, weight gradients with their reorders 94 -> 70 ms a step (32->16 at
    // 64^3: 28.5 -> 17.4 ms). With 8 channels it picks PyTorch's layout and a kernel half as fast
    // as on ndhwc (the CT model's 8 -> 8 at 2x32x96^2: 85 ms against 44), so those stay
    // channels-last.
    const bool blocks =
        first_layer_blocks || (detail::onednn_runs_avx512() && params().in_channels % 16 == 0 &&
                               params().out_channels % 16 == 0);
    const bool channels_last =
        !transposed() && !blocks &&
        (g.src.dims().size() == 5 || (g.src.dims().size() == 4 && detail::onednn_runs_avx512()));
    const auto layout = [&](const dnnl::memory::desc& any) {
      const auto tag =
          any.dims().size() == 5 ? dnnl::memory::format_tag::ndhwc : dnnl::memory::format_tag::nhwc;
      return channels_last ? dnnl::memory::desc(any.dims(), any.data_type(), tag) : any;
    };
    const typename Kinds::BackwardWeights::desc weights_desc(
        Kinds::algorithm, layout(g.src), g.weights, g.bias, layout(g.dst), g.stride, g.dilation,
        g.padding, g.padding);
    const typename Kinds::BackwardWeights::primitive_desc weights_pd(weights_desc, engine, pd);
    weights_src_ = detail::Bridge(detail::plain_desc(src_dims()[0]), weights_pd.src_desc(), engine,
                                  &ctx_->bridge_out);
    weights_src_desc_ = weights_pd.src_desc();
    weights_diff_dst_desc_ = weights_pd.diff_dst_desc();
    src_reused_ = weights_pd.src_desc() == pd.src_desc();
    diff_dst_reused_ = weights_pd.diff_dst_desc() == data_diff_dst_desc_;
    // In bridge_in only where the data pass's copy is not reused (then dead).
    weights_diff_dst_ = detail::Bridge(detail::plain_desc(dst_dims()), weights_pd.diff_dst_desc(),
                                       engine, &ctx_->bridge_in);
    diff_weights_ = detail::GradBridge(g.plain_weights, weights_pd.diff_weights_desc(), engine);
    if (params().bias) {
      diff_bias_ = detail::GradBridge(plain_bias, weights_pd.diff_bias_desc(), engine);
    }
    backward_weights_ = typename Kinds::BackwardWeights(weights_pd);
  }

  detail::Pointwise pointwise_shape() const {
    const Dims& in = src_dims()[0];
    return {.batch = in[0],
            .in_channels = in[1],
            .out_channels = params().out_channels,
            .positions = element_count(in) / (in[0] * in[1])};
  }

  std::shared_ptr<const detail::ContextImpl> ctx_;
  // A kernel that covers its whole input (LeNet-5's C5: 5x5 on 5x5, 16 -> 120): oneDNN's inner
  // product on the same values, [N, C, H, W] by [OC, C, H, W] into [N, OC]; empty otherwise. Its
  // convolution kernels ran C5 at 56 GFLOP/s (0.11 ms forward, 0.15 backward a training step of
  // 64).
  detail::InnerProduct inner_;

  bool unpool_ = false;          // inference by unpool_convolution instead of a oneDNN primitive
  bool doubling_ = false;        // inference by doubling_convolution instead of oneDNN
  bool stem_ = false;            // inference by stem_convolution instead of primitive_
  bool pointwise_ = false;       // training by pointwise_forward and its gradients
  bool unpool_forward_ = false;  // training: forward by unpool_convolution, backward by oneDNN
  // Inference of subpixel() transposed convolutions: a convolution per phase of the output.
  struct Phase {
    std::int64_t phase;  // -1: all phases in one (combined_phase_weights)
    dnnl::primitive primitive;
    detail::WeightBridge weights;
    dnnl::memory::desc dst;         // blocked by subpixel_block_ channels, in bridge_out
    dnnl::memory::desc scratchpad;  // what the primitive asks for at each run
  };
  std::int64_t subpixel_ = 0;  // subpixel_kernel() when run so, else 0
  std::vector<Phase> phases_;
  std::int64_t subpixel_block_ = 8;  // channels per block of the phases' output
  // One convolution per phase (0 to 2^rank - 1, in order) into whole blocks of channels: each
  // pair of phases that shares the output's rows, (a, b, 0) and (a, b, 1), runs into
  // bridge_out side by side and is interleaved at once (interleave_pair).
  bool paired_phases() const {
    return phases_.size() > 1 && params().out_channels % subpixel_block_ == 0;
  }
  // Forward by thin_convolution instead of primitive_ (training still builds it: the backward
  // primitives take its descriptor as hint), with the weights as it reads them and, in
  // inference, the fused activations as primitives of their own.
  static bool by_primitive(const DnnlConvolution& layer) {
    return layer.prepared() && !layer.training() && !layer.thin_ && !layer.unpool_ &&
           !layer.doubling_ && layer.subpixel_ == 0 && static_cast<bool>(layer.primitive_);
  }

  // Training: whether this up-convolution's forward runs by hand into whole blocks of 16 output
  // channels where the AVX-512 kernels run, and its primitives' gradient layout is those blocks:
  // it may then write them (unpool_convolution_blocked, where linked to a concat), and into one
  // block its gradients run by hand on them (unpool_backward_blocked).
  bool unpools_blocked() const {
    return prepared() && training() && unpool_forward_ && params().out_channels % 16 == 0 &&
           detail::avx512_kernels() && blocked_layout(data_diff_dst_desc_, dst_dims()).second == 16;
  }

  // Training by its oneDNN primitives on the blocked copies of its input and output (no layer
  // by hand that reads PyTorch's layout, in either direction).
  bool trains_by_primitive() const {
    return prepared() && training() && static_cast<bool>(primitive_) && !pointwise_ && !thin_ &&
           !inner_ && !unpool_forward_ && !direct_weights_;
  }

  // Whether this layer may write dst_desc_ into its blob: it runs its primitive, is not linked
  // yet, and dst_desc_ is another layout than PyTorch's of the same size (no padded channels).
  bool may_write_blocked() const {
    if (!by_primitive(*this) || blocked_out_) {
      return false;
    }
    const auto plain = detail::plain_desc(dst_dims());
    return dst_desc_ != plain && dst_desc_.get_size() == plain.get_size();
  }

  // Whether each reader reads `desc` as it is: as its source, or as the residual of a fused add
  // whose output has that layout; none linked yet.
  bool read_as(const dnnl::memory::desc& desc, const std::vector<BlockedReader>& readers) const {
    if (readers.empty()) {
      return false;
    }
    for (const auto& [layer, input] : readers) {
      auto* const b = dynamic_cast<DnnlConvolution*>(layer);
      if (b == nullptr || b == this || !by_primitive(*b)) {
        return false;
      }
      if (input == 0
              ? b->blocked_in_ || b->src_desc_ != desc
              : input != 1 || !b->adds_residual() || b->residual_blocked_ || b->dst_desc_ != desc) {
        return false;
      }
    }
    return true;
  }

  static void link_readers(const std::vector<BlockedReader>& readers) {
    for (const auto& [layer, input] : readers) {
      auto* const b = dynamic_cast<DnnlConvolution*>(layer);
      (input == 0 ? b->blocked_in_ : b->residual_blocked_) = true;
    }
  }

  bool thin_ = false;
  std::vector<float> thin_weights_;
  std::vector<dnnl::primitive> activations_;  // thin: one per post-op, empty for tanh
  int tanh_after_ = 0;                        // oneDNN path: trailing tanh post-ops applied by hand
  detail::Bridge src_;
  detail::Bridge dst_;
  detail::WeightBridge weights_;
  detail::WeightBridge bias_;
  dnnl::primitive primitive_;
  dnnl::memory::desc src_desc_;  // primitive_'s layouts
  dnnl::memory::desc dst_desc_;
  bool blocked_out_ = false;       // pass_blocked_to: dst_desc_ written into the blob itself
  bool blocked_in_ = false;        // and src_desc_ read from it
  bool residual_blocked_ = false;  // the fused add's residual comes in dst_desc_
  dnnl::memory::desc scratchpad_;  // inference: what primitive_ asks for at each run
  // Training only.
  detail::Bridge data_diff_dst_;
  detail::Bridge data_diff_src_;
  detail::WeightBridge data_weights_;
  dnnl::primitive backward_data_;  // a convolution_forward where data_by_forward_
  bool data_by_forward_ = false;
  // The backward primitives' layouts (the weight pass's where backward_weights_ runs).
  dnnl::memory::desc data_diff_dst_desc_;
  dnnl::memory::desc data_diff_src_desc_;
  dnnl::memory::desc weights_src_desc_;
  dnnl::memory::desc weights_diff_dst_desc_;
  bool train_blocked_out_ = false;  // write_blocked_in_training
  bool train_blocked_in_ = false;   // read_blocked_in_training
  detail::Bridge weights_src_;
  bool direct_weights_ = false;   // direct_weight_gradient instead of backward_weights_
  bool blocked_weights_ = false;  // detail::blocked_weight_gradient instead of it
  bool src_reused_ = false;       // weights_src_ has forward's layout: src_ holds the copy
  bool diff_dst_reused_ = false;  // likewise for data_diff_dst_
  detail::Bridge weights_diff_dst_;
  detail::GradBridge diff_weights_;
  detail::GradBridge diff_bias_;
  dnnl::primitive backward_weights_;
};

}  // namespace

std::unique_ptr<Layer> make_convolution(LayerType type, std::string name) {
  return std::make_unique<DnnlConvolution>(type, std::move(name));
}

}  // namespace cajal::engine
