#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "pipeline/inference_detail.h"

namespace cajal::pipeline::detail {

Block pad_block(const Block& src, const Extent& size, const Extent& lower, float value) {
  Block dst{size, std::vector<float>(static_cast<std::size_t>(size[0] * size[1] * size[2]), value)};
  for (std::int64_t d = 0; d < src.size[0]; ++d) {
    for (std::int64_t h = 0; h < src.size[1]; ++h) {
      const auto from = (d * src.size[1] + h) * src.size[2];
      const auto to = ((d + lower[0]) * size[1] + h + lower[1]) * size[2] + lower[2];
      std::copy_n(src.values.begin() + from, src.size[2], dst.values.begin() + to);
    }
  }
  return dst;
}

void read_box(const Block& src, const Extent& begin, const Extent& box, std::array<bool, 3> flip,
              float* dst) {
  for (std::int64_t d = 0; d < box[0]; ++d) {
    const auto sd = begin[0] + (flip[0] ? box[0] - 1 - d : d);
    for (std::int64_t h = 0; h < box[1]; ++h) {
      const auto sh = begin[1] + (flip[1] ? box[1] - 1 - h : h);
      const float* row = src.values.data() + (sd * src.size[1] + sh) * src.size[2] + begin[2];
      float* out = dst + (d * box[1] + h) * box[2];
      if (flip[2]) {
        std::reverse_copy(row, row + box[2], out);
      } else {
        std::copy_n(row, box[2], out);
      }
    }
  }
}

void flip_channels(float* data, std::int64_t channels, const Extent& size,
                   std::array<bool, 3> flip) {
  if (!flip[0] && !flip[1] && !flip[2]) {
    return;
  }
  const Block copy{size, {}};
  Block channel{size, std::vector<float>(static_cast<std::size_t>(copy.voxels()))};
  for (std::int64_t c = 0; c < channels; ++c) {
    float* values = data + c * copy.voxels();
    std::copy_n(values, copy.voxels(), channel.values.begin());
    read_box(channel, {0, 0, 0}, size, flip, values);
  }
}

void to_probabilities(float* data, std::int64_t channels, std::int64_t voxels, bool already) {
  if (already) {
    return;
  }
  if (channels == 1) {
    for (std::int64_t v = 0; v < voxels; ++v) {
      data[v] = 1.0f / (1.0f + std::exp(-data[v]));
    }
    return;
  }
  for (std::int64_t v = 0; v < voxels; ++v) {
    float top = data[v];
    for (std::int64_t c = 1; c < channels; ++c) {
      top = std::max(top, data[c * voxels + v]);
    }
    float sum = 0;
    for (std::int64_t c = 0; c < channels; ++c) {
      float& x = data[c * voxels + v];
      x = std::exp(x - top);
      sum += x;
    }
    for (std::int64_t c = 0; c < channels; ++c) {
      data[c * voxels + v] /= sum;
    }
  }
}

std::vector<std::array<bool, 3>> flip_set(bool tta, std::array<bool, 3> allowed) {
  std::vector<std::array<bool, 3>> flips{{false, false, false}};
  if (tta) {
    for (int mask = 1; mask < 8; ++mask) {
      const std::array<bool, 3> flip{(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0};
      if ((!flip[0] || allowed[0]) && (!flip[1] || allowed[1]) && (!flip[2] || allowed[2])) {
        flips.push_back(flip);
      }
    }
  }
  return flips;
}

std::uint8_t argmax(const float* values, std::int64_t classes, std::int64_t stride) {
  if (classes == 1) {
    return values[0] > 0.5f ? 1 : 0;
  }
  std::int64_t best = 0;
  for (std::int64_t c = 1; c < classes; ++c) {
    if (values[c * stride] > values[best * stride]) {
      best = c;
    }
  }
  return static_cast<std::uint8_t>(best);
}

void argmax_row(const float* scores, std::int64_t classes, std::int64_t stride, std::int64_t count,
                std::uint8_t* labels) {
  constexpr std::int64_t kStretch = 256;
  std::array<float, kStretch> best_value;
  std::array<std::int32_t, kStretch> best;
  for (std::int64_t w0 = 0; w0 < count; w0 += kStretch) {
    const std::int64_t n = std::min(kStretch, count - w0);
    std::copy_n(scores + w0, n, best_value.begin());
    std::fill_n(best.begin(), n, 0);
    for (std::int64_t c = 1; c < classes; ++c) {
      const float* values = scores + c * stride + w0;
      const auto label = static_cast<std::int32_t>(c);
      for (std::int64_t i = 0; i < n; ++i) {
        const auto at = static_cast<std::size_t>(i);
        const bool greater = values[i] > best_value[at];  // the first largest stays, as argmax
        best_value[at] = greater ? values[i] : best_value[at];
        best[at] = greater ? label : best[at];
      }
    }
    for (std::int64_t i = 0; i < n; ++i) {
      labels[w0 + i] = static_cast<std::uint8_t>(best[static_cast<std::size_t>(i)]);
    }
  }
}

std::int64_t prepare_and_measure(models::Model& model, const engine::Context& ctx,
                                 std::int64_t batch, const Extent& size) {
  auto& net = model.net();
  const engine::Dims dims{batch, 1, size[0], size[1], size[2]};
  net.prepare(ctx, {{net.inputs().front(), dims}});
  return net.peak_bytes() + engine::element_count(dims) * static_cast<std::int64_t>(sizeof(float));
}

}  // namespace cajal::pipeline::detail
