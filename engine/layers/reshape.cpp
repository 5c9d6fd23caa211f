#include "engine/layers/reshape.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "engine/layers/common.h"

namespace cajal::engine {
namespace {

std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a, so that the masks depend on the layer's name and not on where it sits in memory.
std::uint64_t hash_name(const std::string& name) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

bool dropout_keeps(std::uint64_t seed, const std::string& name, std::uint64_t step,
                   std::uint64_t index, double p) {
  const std::uint64_t stream = mix(mix(seed ^ hash_name(name)) + step);
  // The top 53 bits as a uniform double in [0, 1).
  const double u = static_cast<double>(mix(stream + index) >> 11) * 0x1.0p-53;
  return u >= p;
}

void ReshapeLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::dropout) {
    p_ = params.number("p", 0.5);
    if (p_ < 0.0 || p_ >= 1.0) {
      params.fail("p", "a probability in [0, 1)", std::to_string(p_));
    }
  }
}

Dims ReshapeLayer::infer_dst_dims(const std::vector<Dims>& src) const {
  detail::check_input_count(*this, src, 1);
  if (src[0].size() < 2 || src[0].size() > 5) {
    fail("input dims", "2 to 5 dims", to_string(src[0]));
  }
  if (type() == LayerType::flatten) {
    return {src[0][0], element_count(src[0]) / src[0][0]};
  }
  return src[0];
}

void ReshapeLayer::set_seed(std::uint64_t seed) {
  CAJAL_CHECK(type() == LayerType::dropout) << label() << ": set_seed on a layer without masks";
  seed_ = seed;
  step_ = 0;
}

void ReshapeLayer::forward(const std::vector<const Tensor*>& src, Tensor& dst) const {
  if (type() != LayerType::dropout || !training()) {
    std::copy_n(src[0]->data(), src[0]->size(), dst.data());
    return;
  }
  const auto count = src[0]->size();
  keep_.resize(static_cast<std::size_t>(count));
  const auto scale = static_cast<float>(1.0 / (1.0 - p_));
  const auto step = step_++;
  const float* in = src[0]->data();
  float* out = dst.data();
#pragma omp parallel for
  for (std::int64_t i = 0; i < count; ++i) {
    const bool keep = dropout_keeps(seed_, name(), step, static_cast<std::uint64_t>(i), p_);
    keep_[static_cast<std::size_t>(i)] = keep ? 1 : 0;
    out[i] = keep ? in[i] * scale : 0.0f;
  }
}

void ReshapeLayer::backward(const std::vector<const Tensor*>& /*src*/, const Tensor& /*dst*/,
                            const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) {
  if (diff_src[0] == nullptr) {
    return;
  }
  if (type() != LayerType::dropout || !training()) {
    std::copy_n(diff_dst.data(), diff_dst.size(), diff_src[0]->data());
    return;
  }
  CAJAL_CHECK(static_cast<std::int64_t>(keep_.size()) == diff_dst.size())
      << label() << ": backward without a training forward before it";
  const auto scale = static_cast<float>(1.0 / (1.0 - p_));
  for (std::int64_t i = 0; i < diff_dst.size(); ++i) {
    diff_src[0]->data()[i] = keep_[static_cast<std::size_t>(i)] ? diff_dst.data()[i] * scale : 0.0f;
  }
}

std::unique_ptr<Layer> make_reshape(LayerType type, std::string name) {
  return std::make_unique<ReshapeLayer>(type, std::move(name));
}

}  // namespace cajal::engine
