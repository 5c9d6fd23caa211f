#include "engine/detail/dnnl_util.h"

#include <algorithm>
#include <memory>
#include <new>

#include "core/error.h"

namespace cajal::engine::detail {

using tag = dnnl::memory::format_tag;

std::tuple<dnnl::algorithm, float, float> eltwise_algorithm(LayerType type, float alpha) {
  using alg = dnnl::algorithm;
  switch (type) {
    case LayerType::relu:
      return {alg::eltwise_relu, 0.0f, 0.0f};
    case LayerType::leaky_relu:
      return {alg::eltwise_relu, alpha, 0.0f};
    case LayerType::elu:
      return {alg::eltwise_elu, alpha, 0.0f};
    case LayerType::sigmoid:
      return {alg::eltwise_logistic, 0.0f, 0.0f};
    case LayerType::tanh:
      return {alg::eltwise_tanh, 0.0f, 0.0f};
    case LayerType::gelu:
      return {alg::eltwise_gelu_erf, 0.0f, 0.0f};
    default:
      break;
  }
  CAJAL_CHECK(false) << "not an activation: " << layer_type_name(type);
  return {alg::undef, 0.0f, 0.0f};
}

dnnl::memory::format_tag plain_tag(std::size_t rank) {
  switch (rank) {
    case 1:
      return tag::a;
    case 2:
      return tag::ab;
    case 3:
      return tag::abc;
    case 4:
      return tag::abcd;
    case 5:
      return tag::abcde;
    case 6:
      return tag::abcdef;
    default:
      break;
  }
  CAJAL_CHECK(false) << "no plain layout for rank " << rank;
  return tag::undef;
}

dnnl::memory::desc plain_desc(const Dims& dims) {
  return tagged_desc(dims, plain_tag(dims.size()));
}

dnnl::memory::desc tagged_desc(const Dims& dims, dnnl::memory::format_tag format) {
  return dnnl::memory::desc(dnnl::memory::dims(dims.begin(), dims.end()),
                            dnnl::memory::data_type::f32, format);
}

dnnl::memory wrap(const Tensor& tensor, const dnnl::engine& engine) {
  // oneDNN takes a void*; a primitive only reads memory bound as a source.
  return dnnl::memory(plain_desc(tensor.dims()), engine, const_cast<float*>(tensor.data()));
}

dnnl::memory reorder_once(const dnnl::memory::desc& from, const float* data,
                          const dnnl::memory::desc& wanted, const ContextImpl& ctx) {
  const dnnl::memory user(from, ctx.engine, const_cast<float*>(data));
  dnnl::memory result(wanted, ctx.engine);
  dnnl::reorder(user, result).execute(ctx.stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, result}});
  ctx.stream.wait();
  return result;
}

void run_plain(const dnnl::primitive& primitive, const ContextImpl& ctx, const Tensor& src,
               Tensor& dst, std::unordered_map<int, dnnl::memory> args) {
  args.emplace(DNNL_ARG_SRC, wrap(src, ctx.engine));
  args.emplace(DNNL_ARG_DST, dnnl::memory(plain_desc(dst.dims()), ctx.engine, dst.data()));
  primitive.execute(ctx.stream, args);
  ctx.stream.wait();
}

void Scratchpad::execute(const dnnl::primitive& primitive, const dnnl::memory::desc& desc,
                         std::unordered_map<int, dnnl::memory> args, const ContextImpl& ctx) {
  // Not value-initialised: the primitive writes before it reads.
  const std::size_t bytes = desc.get_size();
  const auto release = [bytes](void* p) { free_aligned(p, bytes); };
  const std::unique_ptr<void, decltype(release)> buffer(
      bytes > 0 && ctx.single_pass ? allocate_aligned(bytes) : nullptr, release);
  if (bytes > 0) {
    void* memory = buffer ? buffer.get() : ctx.scratchpad.kept_.get(bytes, false);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(desc, ctx.engine, memory));
  }
  primitive.execute(ctx.stream, args);
  ctx.stream.wait();
}

Bridge::Bridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
               const dnnl::engine& engine, const SharedScratch* shared)
    : plain_(plain), shared_(shared) {
  if (plain != wanted) {
    buffer_ = shared_ != nullptr ? dnnl::memory(wanted, engine, DNNL_MEMORY_NONE)
                                 : dnnl::memory(wanted, engine);
    if (shared_ != nullptr) {
      shared_->plan(wanted.get_size());
    }
    to_wanted_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine, plain, engine, wanted));
    to_plain_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine, wanted, engine, plain));
  }
}

const dnnl::memory& Bridge::bound(const ContextImpl& ctx) const {
  if (buffer_ && shared_ != nullptr) {
    buffer_.set_data_handle(shared_->get(buffer_.get_desc().get_size(), ctx.single_pass));
  }
  return buffer_;
}

dnnl::memory Bridge::in(const Tensor& src, const ContextImpl& ctx) const {
  auto user = dnnl::memory(plain_, ctx.engine, const_cast<float*>(src.data()));
  if (!buffer_) {
    return user;
  }
  to_wanted_.execute(ctx.stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, bound(ctx)}});
  return buffer_;
}

dnnl::memory Bridge::held(const Tensor& src, const ContextImpl& ctx) const {
  if (buffer_) {
    return buffer_;
  }
  return dnnl::memory(plain_, ctx.engine, const_cast<float*>(src.data()));
}

dnnl::memory Bridge::out(Tensor& dst, const ContextImpl& ctx) const {
  if (buffer_) {
    return bound(ctx);
  }
  return dnnl::memory(plain_, ctx.engine, dst.data());
}

dnnl::memory Bridge::out_holding(const Tensor& initial, Tensor& dst, const ContextImpl& ctx) const {
  if (buffer_) {
    return in(initial, ctx);  // reordered into the primitive's layout
  }
  std::copy_n(initial.data(), initial.size(), dst.data());
  return dnnl::memory(plain_, ctx.engine, dst.data());
}

void Bridge::into_wanted(const Tensor& src, const dnnl::memory& target,
                         const ContextImpl& ctx) const {
  auto user = dnnl::memory(plain_, ctx.engine, const_cast<float*>(src.data()));
  if (!buffer_) {
    std::copy_n(src.data(), src.size(), static_cast<float*>(target.get_data_handle()));
    return;
  }
  to_wanted_.execute(ctx.stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, target}});
}

void Bridge::out_done(Tensor& dst, const ContextImpl& ctx) const {
  if (buffer_) {
    auto user = dnnl::memory(plain_, ctx.engine, dst.data());
    to_plain_.execute(ctx.stream, {{DNNL_ARG_FROM, buffer_}, {DNNL_ARG_TO, user}});
  }
}

void Bridge::to_plain(const float* values, float* dst, const ContextImpl& ctx) const {
  CAJAL_CHECK(buffer_) << "Bridge::to_plain where the layouts match";
  const dnnl::memory from(buffer_.get_desc(), ctx.engine, const_cast<float*>(values));
  const dnnl::memory user(plain_, ctx.engine, dst);
  to_plain_.execute(ctx.stream, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, user}});
}

WeightBridge::WeightBridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
                           const dnnl::engine& engine)
    : plain_(plain),
      memory_(wanted, engine),
      to_wanted_(dnnl::reorder::primitive_desc(engine, plain, engine, wanted)) {}

void WeightBridge::refresh(const Tensor& tensor, const ContextImpl& ctx) {
  CAJAL_CHECK(tensor.size() * static_cast<std::int64_t>(sizeof(float)) ==
              static_cast<std::int64_t>(plain_.get_size()))
      << "weight of " << to_string(tensor.dims());
  const dnnl::memory user(plain_, ctx.engine, const_cast<float*>(tensor.data()));
  to_wanted_.execute(ctx.stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, memory_}});
  ctx.stream.wait();
}

GradBridge::GradBridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& produced,
                       const dnnl::engine& engine)
    : plain_(plain), buffer_(produced, engine) {
  dnnl::post_ops sum;
  sum.append_sum(1.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(sum);
  accumulate_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine, produced, engine, plain, attr));
}

void GradBridge::add_to(Tensor& grad, const ContextImpl& ctx) const {
  CAJAL_CHECK(grad.size() * static_cast<std::int64_t>(sizeof(float)) ==
              static_cast<std::int64_t>(plain_.get_size()))
      << "gradient of " << to_string(grad.dims());
  auto user = dnnl::memory(plain_, ctx.engine, grad.data());
  accumulate_.execute(ctx.stream, {{DNNL_ARG_FROM, buffer_}, {DNNL_ARG_TO, user}});
}

}  // namespace cajal::engine::detail
