// Internal to engine/: oneDNN objects and small helpers. Never include from a public header.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "engine/layer_type.h"
#include "engine/tensor.h"

namespace cajal::engine::detail {

// Memory that the layout bridges of every layer share in inference, where layers run one at a
// time. It grows to a layer's request. When shrinking (ContextImpl::single_pass), a large one
// (kShrinkBytes or more) is allocated again at the size asked for when a layer asks for half of it
// or less, so a small layer late in a net does not keep the largest layer's copy resident;
// otherwise it is kept for the next forward().
class SharedScratch {
 public:
  static constexpr std::size_t kShrinkBytes = std::size_t{16} << 20;
  // The bytes held after a request of `request` bytes when `held` are held (the policy of get()).
  static std::size_t held_after(std::size_t held, std::size_t request, bool shrink = true) {
    const std::size_t wanted = (request + sizeof(float) - 1) / sizeof(float) * sizeof(float);
    const bool smaller = shrink && held >= kShrinkBytes && 2 * wanted <= held;
    return held < wanted || smaller ? wanted : held;
  }
  void* get(std::size_t bytes, bool shrink) const {
    const std::size_t held = buffer_.size() * sizeof(float);
    const std::size_t next = held_after(held, bytes, shrink);
    if (next != held) {
      release();
      resize_zeroed(buffer_, next / sizeof(float));
    }
    return buffer_.data();
  }
  // Gives the memory back (a prepare() for other dims); the next get() allocates again.
  void release() const { std::vector<float, AlignedAllocator<float>>().swap(buffer_); }
  std::size_t held_bytes() const { return buffer_.size() * sizeof(float); }
  // In prepare(): a layer's bridge will ask for `bytes` (Net::peak_bytes adds them up per layer).
  void plan(std::size_t bytes) const { planned_ = std::max(planned_, bytes); }
  // The largest plan() since the last call, and forgets it.
  std::size_t take_planned() const { return std::exchange(planned_, 0); }

 private:
  mutable std::vector<float, AlignedAllocator<float>> buffer_;
  mutable std::size_t planned_ = 0;
};

struct ContextImpl;

// The scratchpad an inference primitive asks for (oneDNN's user mode: a gemm-based transposed
// convolution's column buffer is as large as an activation). In a single pass
// (ContextImpl::single_pass), allocated for one execution and freed after it; otherwise one buffer
// grown to the largest request is kept for the next forward() (oneDNN's library mode keeps such a
// buffer for the whole process, whatever the pass).
class Scratchpad {
 public:
  // Runs `primitive` with `args` and, when `desc` asks for memory, a scratchpad for that run;
  // waits for it to finish.
  static void execute(const dnnl::primitive& primitive, const dnnl::memory::desc& desc,
                      std::unordered_map<int, dnnl::memory> args, const ContextImpl& ctx);
  // In prepare(): a primitive will ask for `bytes` (Net::peak_bytes counts them per layer).
  void plan(std::size_t bytes) const { planned_ = std::max(planned_, bytes); }
  std::size_t take_planned() const { return std::exchange(planned_, 0); }
  // Gives the kept buffer back (a prepare() for other dims).
  void release() const { kept_.release(); }

 private:
  mutable std::size_t planned_ = 0;
  SharedScratch kept_;  // not a single pass: the buffer kept between runs
};

struct ContextImpl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  mutable dnnl::stream stream{engine};
  int threads = 1;
  SharedScratch bridge_in;   // inference: the inputs reordered into a primitive's layout
  SharedScratch bridge_out;  // and its outputs before the reorder back
  Scratchpad scratchpad;     // inference: primitives' own scratch memory
  // Set by Net::prepare (NetOptions::release_bytes): one pass over a large input, so the scratch
  // above is given back as soon as a layer is done with it rather than kept for the next pass.
  mutable bool single_pass = false;
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
  // `src` in the primitive's layout into `target` (memory of that layout), not into the bridge.
  void into_wanted(const Tensor& src, const dnnl::memory& target, const ContextImpl& ctx) const;
  void out_done(Tensor& dst, const ContextImpl& ctx) const;
  // `values`, laid out as the primitive wrote them (not the bridge's copy), into `dst` in the
  // plain layout. Only where the layouts differ.
  void to_plain(const float* values, float* dst, const ContextImpl& ctx) const;

 private:
  // Binds the shared scratch to buffer_ (when there is one); returns buffer_.
  const dnnl::memory& bound(const ContextImpl& ctx) const;
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
