// Internal to engine/: oneDNN objects and small helpers. Never include from a public header.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <tuple>
#include <unordered_map>

#include "engine/layer_type.h"
#include "engine/tensor.h"

namespace cajal::engine::detail {

// Memory that the layout bridges of every layer share in inference, where layers run one at a
// time: grows to the largest request.
class SharedScratch {
 public:
  void* get(std::size_t bytes) const {
    const std::size_t floats = (bytes + sizeof(float) - 1) / sizeof(float);
    if (buffer_.size() < floats) {
      release();
      buffer_.resize(floats);
    }
    return buffer_.data();
  }
  // Gives the memory back (a prepare() for other dims); the next get() allocates again.
  void release() const { std::vector<float, AlignedAllocator<float>>().swap(buffer_); }

 private:
  mutable std::vector<float, AlignedAllocator<float>> buffer_;
};

struct ContextImpl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  mutable dnnl::stream stream{engine};
  int threads = 1;
  SharedScratch bridge_in;   // inference: the inputs reordered into a primitive's layout
  SharedScratch bridge_out;  // and its outputs before the reorder back
};

// oneDNN's eltwise algorithm, alpha and beta for an activation layer type.
std::tuple<dnnl::algorithm, float, float> eltwise_algorithm(LayerType type, float alpha);

// The plain (PyTorch) layout for a tensor of this rank: nc, ncw, nchw or ncdhw.
dnnl::memory::format_tag plain_tag(std::size_t rank);
dnnl::memory::desc plain_desc(const Dims& dims);
// A memory::desc with a given tag (weights in PyTorch's layout, for example).
dnnl::memory::desc tagged_desc(const Dims& dims, dnnl::memory::format_tag tag);

// A oneDNN memory object over a tensor's values, without copying.
dnnl::memory wrap(const Tensor& tensor, const dnnl::engine& engine);

// Runs a primitive with DNNL_ARG_SRC and DNNL_ARG_DST bound to plain tensors, plus `args`.
void run_plain(const dnnl::primitive& primitive, const ContextImpl& ctx, const Tensor& src,
               Tensor& dst, std::unordered_map<int, dnnl::memory> args = {});

// A copy of `data` (laid out as `from`) in the layout a primitive asked for, made by one reorder.
// Used once per weight in prepare(), so the layer owns its weights in oneDNN's layout.
dnnl::memory reorder_once(const dnnl::memory::desc& from, const float* data,
                          const dnnl::memory::desc& wanted, const ContextImpl& ctx);

// A primitive's input or output in the plain layout, bridged to the layout the primitive chose.
// Built in prepare(); forward() binds the user's buffer and reorders only when the layouts differ.
class Bridge {
 public:
  Bridge() = default;
  // With `shared`, the reordered copy lives in that scratch (bound at each use) rather than in
  // memory of its own.
  Bridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
         const dnnl::engine& engine, const SharedScratch* shared = nullptr);
  // Memory the primitive reads: the user's data, or the reordered copy.
  dnnl::memory in(const Tensor& src, const ContextImpl& ctx) const;
  // What in(src) returned last, without reordering again (for a backward primitive that reads
  // the same tensor in the same layout).
  dnnl::memory held(const Tensor& src, const ContextImpl& ctx) const;
  // Memory the primitive writes; call out_done() after execution.
  dnnl::memory out(Tensor& dst, const ContextImpl& ctx) const;
  // As out(), holding a copy of `initial` (for a primitive that adds to its destination).
  dnnl::memory out_holding(const Tensor& initial, Tensor& dst, const ContextImpl& ctx) const;
  void out_done(Tensor& dst, const ContextImpl& ctx) const;

 private:
  // Binds the shared scratch to buffer_ (when there is one); returns buffer_.
  const dnnl::memory& bound() const;
  dnnl::memory::desc plain_;
  dnnl::memory buffer_;  // empty when the layouts match
  const SharedScratch* shared_ = nullptr;
  dnnl::reorder to_wanted_;
  dnnl::reorder to_plain_;
};

// A weight in the layout a primitive reads, copied from the layer's tensor (PyTorch's layout) by
// one reorder: refresh() in prepare() and whenever the values changed (Layer::weights_changed).
// The copy is the layer's own memory, allocated by oneDNN, as reorder_once() makes it.
class WeightBridge {
 public:
  WeightBridge() = default;
  WeightBridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
               const dnnl::engine& engine);
  void refresh(const Tensor& tensor, const ContextImpl& ctx);
  const dnnl::memory& memory() const { return memory_; }

 private:
  dnnl::memory::desc plain_;
  dnnl::memory memory_;
  dnnl::reorder to_wanted_;
};

// A weight gradient in the layout a backward primitive writes it, added to the layer's gradient
// tensor (PyTorch's layout) by one reorder with a sum post-op: grad += diff.
class GradBridge {
 public:
  GradBridge() = default;
  GradBridge(const dnnl::memory::desc& plain, const dnnl::memory::desc& produced,
             const dnnl::engine& engine);
  // Bind as the primitive's DNNL_ARG_DIFF_WEIGHTS or DNNL_ARG_DIFF_BIAS.
  const dnnl::memory& memory() const { return buffer_; }
  void add_to(Tensor& grad, const ContextImpl& ctx) const;

 private:
  dnnl::memory::desc plain_;
  dnnl::memory buffer_;
  dnnl::reorder accumulate_;
};

}  // namespace cajal::engine::detail
