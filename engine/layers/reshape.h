// Layers that move numbers without arithmetic of their own: flatten ([N, C, ...] -> [N, C * ...],
// no keys) and dropout (key p in [0, 1), default 0.5: identity at inference; in training, each
// value is zeroed with probability p and the others scaled by 1 / (1 - p), as PyTorch's Dropout).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine {

class ReshapeLayer : public Layer {
 public:
  using Layer::Layer;
  // Both copy their input unchanged at inference; a Net may alias the blobs instead (not for
  // a training dropout).
  void forward(const std::vector<const Tensor*>& src, Tensor& dst) const override;
  void backward(const std::vector<const Tensor*>& src, const Tensor& dst, const Tensor& diff_dst,
                const std::vector<Tensor*>& diff_src) override;

  double p() const { return p_; }
  // Dropout's masks: the i-th value of the k-th training forward since set_seed() is kept when
  // dropout_keeps(seed, name, k, i), so the same seed gives the same masks on any thread count.
  // The default seed is 0; each layer's name makes its masks differ from the others'.
  void set_seed(std::uint64_t seed);

 protected:
  void parse_params(ParamReader& params) override;
  Dims infer_dst_dims(const std::vector<Dims>& src) const override;

 private:
  double p_ = 0.0;
  std::uint64_t seed_ = 0;
  mutable std::uint64_t step_ = 0;
  mutable std::vector<std::uint8_t> keep_;  // the last training forward's mask
};

// The counter-based generator behind dropout's masks (a SplitMix64 finaliser over seed, name,
// step and index): true when the value is kept, with probability 1 - p.
bool dropout_keeps(std::uint64_t seed, const std::string& name, std::uint64_t step,
                   std::uint64_t index, double p);

std::unique_ptr<Layer> make_reshape(LayerType type, std::string name);

}  // namespace cajal::engine
