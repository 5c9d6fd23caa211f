// Internal to engine/: oneDNN's inner product over plain tensors, for the linear layer and for a
// convolution whose kernel covers its whole input.
#pragma once

#include <cstdint>

#include <dnnl.hpp>

#include "engine/detail/dnnl_util.h"
#include "engine/tensor.h"

namespace cajal::engine::detail {

// src [N, C, ...] by weight [OC, C, ...] (PyTorch's layout, the same trailing dims as src) into
// [N, OC], plus bias [OC] where there is one. The weights are kept in the layout the primitive
// picks, copied by refresh() (at prepare, and whenever they change in training); in training the
// data and weight gradients too.
class InnerProduct {
 public:
  InnerProduct() = default;
  InnerProduct(const Dims& src, std::int64_t out_features, bool bias, bool training,
               const dnnl::engine& engine);
  explicit operator bool() const { return static_cast<bool>(forward_); }
  void refresh(const Tensor& weight, const Tensor* bias, const ContextImpl& ctx);
  // dst: N x OC values.
  void forward(const Tensor& src, float* dst, const ContextImpl& ctx) const;
  // Training: diff_src (unless null) from diff_dst (N x OC values), and the weight and bias
  // gradients added to grad_weight and grad_bias (unless null).
  void backward(const Tensor& src, const float* diff_dst, Tensor* diff_src, Tensor& grad_weight,
                Tensor* grad_bias, const ContextImpl& ctx) const;

 private:
  bool bias_ = false;
  bool training_ = false;
  dnnl::memory::desc dst_;  // [N, OC]
  dnnl::primitive forward_;
  WeightBridge weights_;
  WeightBridge bias_memory_;
  // Training only.
  dnnl::primitive backward_data_;
  WeightBridge data_weights_;
  dnnl::primitive backward_weights_;
  GradBridge diff_weights_;
  GradBridge diff_bias_;
};

}  // namespace cajal::engine::detail
