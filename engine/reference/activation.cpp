// Naive twins of the element-wise activations and prelu.
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "engine/layers/eltwise.h"
#include "engine/reference/reference.h"

namespace cajal::engine::reference {

double activate(LayerType type, double alpha, double x) {
  switch (type) {
    case LayerType::relu:
      return x > 0 ? x : 0.0;
    case LayerType::leaky_relu:
      return x > 0 ? x : alpha * x;
    case LayerType::elu:
      return x > 0 ? x : alpha * (std::exp(x) - 1.0);
    case LayerType::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case LayerType::tanh:
      return std::tanh(x);
    case LayerType::gelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    default:
      return x;
  }
}

Grid grid_of(const Dims& dims) {
  Grid grid;
  if (dims.size() == 5) {
    grid = {dims[2], dims[3], dims[4]};
  } else if (dims.size() == 4) {
    grid = {1, dims[2], dims[3]};
  } else if (dims.size() == 3) {
    grid = {1, 1, dims[2]};
  }
  return grid;
}

Grid grid_of_params(const Dims& values, std::int64_t fill) {
  if (values.size() == 3) {
    return {values[0], values[1], values[2]};
  }
  return {fill, values.at(0), values.at(1)};
}

namespace {

// d activate(type, alpha, x) / dx, with PyTorch's choice at the kinks (x = 0 takes the left side).
double derivative(LayerType type, double alpha, double x) {
  switch (type) {
    case LayerType::relu:
      return x > 0 ? 1.0 : 0.0;
    case LayerType::leaky_relu:
      return x > 0 ? 1.0 : alpha;
    case LayerType::elu:
      return x > 0 ? 1.0 : alpha * std::exp(x);
    case LayerType::sigmoid: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 - s);
    }
    case LayerType::tanh: {
      const double t = std::tanh(x);
      return 1.0 - t * t;
    }
    case LayerType::gelu: {
      const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
      const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
      return cdf + x * pdf;
    }
    default:
      return 1.0;
  }
}

class Eltwise final : public EltwiseLayer {
 public:
  using EltwiseLayer::EltwiseLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto in = src[0]->values();
    auto out = dst.values();
    for (std::size_t i = 0; i < in.size(); ++i) {
      out[i] = static_cast<float>(activate(type(), activation().alpha, in[i]));
    }
  }

  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    if (diff_src[0] == nullptr) {
      return;
    }
    const auto in = src[0]->values();
    for (std::size_t i = 0; i < in.size(); ++i) {
      diff_src[0]->values()[i] =
          static_cast<float>(derivative(type(), activation().alpha, in[i]) * diff_dst.values()[i]);
    }
  }
};

class Prelu final : public PreluLayer {
 public:
  using PreluLayer::PreluLayer;
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override {
    const auto& x = *src[0];
    const auto channels = x.dim(1);
    const auto plane = x.size() / (x.dim(0) * channels);
    const auto slopes = weight("weight").values();
    for (std::int64_t i = 0; i < x.size(); ++i) {
      const auto c = num_parameters() == 1 ? 0 : (i / plane) % channels;
      const float v = x.data()[i];
      dst.data()[i] = v > 0 ? v : slopes[static_cast<std::size_t>(c)] * v;
    }
  }

  // dx = dy where x > 0, slope * dy elsewhere; d slope = sum of dy * x where x <= 0.
  void backward(const std::vector<const Tensor*>& src, const Tensor& /*dst*/,
                const Tensor& diff_dst, const std::vector<Tensor*>& diff_src) override {
    const auto& x = *src[0];
    const auto channels = x.dim(1);
    const auto plane = x.size() / (x.dim(0) * channels);
    const auto slopes = weight("weight").values();
    std::vector<double> diff_slopes(slopes.size(), 0.0);
    for (std::int64_t i = 0; i < x.size(); ++i) {
      const auto c = static_cast<std::size_t>(num_parameters() == 1 ? 0 : (i / plane) % channels);
      const double v = x.data()[i];
      const double dy = diff_dst.data()[i];
      if (v <= 0) {
        diff_slopes[c] += dy * v;
      }
      if (diff_src[0] != nullptr) {
        diff_src[0]->data()[i] = static_cast<float>(v > 0 ? dy : slopes[c] * dy);
      }
    }
    auto& sum = grad("weight");
    for (std::size_t c = 0; c < diff_slopes.size(); ++c) {
      sum.values()[c] += static_cast<float>(diff_slopes[c]);
    }
  }
};

}  // namespace

std::unique_ptr<Layer> make_eltwise(LayerType type, std::string name) {
  return std::make_unique<Eltwise>(type, std::move(name));
}

std::unique_ptr<Layer> make_prelu(LayerType type, std::string name) {
  return std::make_unique<Prelu>(type, std::move(name));
}

}  // namespace cajal::engine::reference
