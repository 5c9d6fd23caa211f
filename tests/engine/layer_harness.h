// Runs one layer on both backends (oneDNN and its naive twin) with the same random weights and
// inputs, for the layer tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "engine/layers/common.h"
#include "engine/net.h"
#include "engine/tensor.h"

namespace cajal::engine::testing {

// Uniform values in [lo, hi) from a fixed seed.
Tensor random_tensor(const Dims& dims, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f);
// max |got - expected| / max |expected|.
double relative_error(const Tensor& got, const Tensor& expected);
// Random weights for every spec of `layer` (variances positive), named "<layer>.<role>".
WeightMap random_weights(const Layer& layer, std::uint32_t seed);

// One node of a test graph, before its layer is made.
struct NodeDef {
  LayerType type;
  std::string name;
  nlohmann::json params;
  std::vector<std::string> inputs;
  std::string output;
};
// The defs' layers made on `backend` with their params loaded, as a Net's nodes.
std::vector<Node> make_nodes(const std::vector<NodeDef>& defs, Backend backend);
// Random weights for every def's layer, a seed of its own each (11, 21, 31, ...).
WeightMap weights_for(const std::vector<NodeDef>& defs);

// x [N, C, spatial...] in PyTorch's layout as [N, C / block, spatial..., block] (block C:
// channels last), or back (`back`).
Tensor reblock(const Tensor& x, std::int64_t block, bool back);

struct Outputs {
  Tensor onednn;
  Tensor reference;
  double relative_error = 0.0;
};

// Builds the layer on each backend from `params`, loads the same random weights, prepares it for
// `input_dims` on `threads` threads and runs it on the same random inputs.
Outputs run_both(LayerType type, const nlohmann::json& params, const std::vector<Dims>& input_dims,
                 std::uint32_t seed = 7, int threads = 2);

// Runs only one backend.
Tensor run_one(Backend backend, LayerType type, const nlohmann::json& params,
               const std::vector<Tensor>& inputs, const WeightMap& weights, int threads = 2);

// While one lives, the kernels that `set` switches are off (set(false)); on again when it goes,
// a failed assertion or exception included.
template <void (*set)(bool)>
class KernelsOff {
 public:
  KernelsOff() { set(false); }
  ~KernelsOff() { set(true); }
  KernelsOff(const KernelsOff&) = delete;
  KernelsOff& operator=(const KernelsOff&) = delete;
};

// The engine's AVX2 and FMA kernels off: their portable loops run (those a CPU without them
// takes).
using PortableLoops = KernelsOff<detail::set_avx2_fma_kernels>;
// The engine's AVX-512 kernels off: their AVX2 and FMA twins run.
using Avx2Kernels = KernelsOff<detail::set_avx512_kernels>;

}  // namespace cajal::engine::testing
