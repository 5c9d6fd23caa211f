// Internal to engine/: checks shared by the layer families.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace cajal::engine::detail {

// Throws unless there are exactly `count` inputs (count 0: at least two).
void check_input_count(const Layer& layer, const std::vector<Dims>& src, std::size_t count);
// Throws unless the input has `rank` dims (rank 0: 4 or 5, that is 2D or 3D images).
void check_rank(const Layer& layer, const Dims& dims, std::size_t rank);
// Throws unless dims[1] == channels.
void check_channels(const Layer& layer, const Dims& dims, std::int64_t channels);

}  // namespace cajal::engine::detail
