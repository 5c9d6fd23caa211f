#include "engine/layers/reshape.h"

#include <algorithm>
#include <utility>

#include "engine/layers/common.h"

namespace cajal::engine {

void ReshapeLayer::parse_params(ParamReader& params) {
  if (type() == LayerType::dropout) {
    const double p = params.number("p", 0.5);
    if (p < 0.0 || p >= 1.0) {
      params.fail("p", "a probability in [0, 1)", std::to_string(p));
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

void ReshapeLayer::forward(const std::vector<const Tensor*>& src, Tensor& dst) const {
  std::copy_n(src[0]->data(), src[0]->size(), dst.data());
}

std::unique_ptr<Layer> make_reshape(LayerType type, std::string name) {
  return std::make_unique<ReshapeLayer>(type, std::move(name));
}

}  // namespace cajal::engine
