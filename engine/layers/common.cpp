#include "engine/layers/common.h"

#include "core/error.h"

namespace cajal::engine::detail {

void check_input_count(const Layer& layer, const std::vector<Dims>& src, std::size_t count) {
  if (count == 0 && src.size() < 2) {
    throw Error(layer.label() + ": inputs", "at least 2", std::to_string(src.size()));
  }
  if (count != 0 && src.size() != count) {
    throw Error(layer.label() + ": inputs", std::to_string(count), std::to_string(src.size()));
  }
}

void check_rank(const Layer& layer, const Dims& dims, std::size_t rank) {
  if (rank == 0 && (dims.size() == 4 || dims.size() == 5)) {
    return;
  }
  if (rank != dims.size()) {
    const std::string expected =
        rank == 0 ? "[N,C,H,W] or [N,C,D,H,W]" : std::to_string(rank) + " dims";
    throw Error(layer.label() + ": input dims", expected, to_string(dims));
  }
}

void check_channels(const Layer& layer, const Dims& dims, std::int64_t channels) {
  if (dims.size() < 2 || dims[1] != channels) {
    throw Error(layer.label() + ": input channels of " + to_string(dims), std::to_string(channels),
                dims.size() < 2 ? "none" : std::to_string(dims[1]));
  }
}

}  // namespace cajal::engine::detail
