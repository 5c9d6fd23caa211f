#include "engine/layers/pointwise.h"

#include <algorithm>
#include <array>
#include <vector>

#include "core/error.h"

namespace cajal::engine::detail {
namespace {

// Positions a chunk: the forward's sums of 16 outputs (32 KB) fit in the first-level cache.
constexpr std::int64_t kChunk = 512;
constexpr std::int64_t kLanes = 16;

std::int64_t chunks_of(const Pointwise& p) {
  return (p.positions + kChunk - 1) / kChunk;
}

void check(const Pointwise& p) {
  CAJAL_CHECK(p.out_channels >= 1 && p.out_channels <= kPointwiseMaxOutChannels &&
              p.in_channels >= 1 && p.batch >= 1 && p.positions >= 1)
      << "pointwise convolution of " << p.in_channels << " into " << p.out_channels << " channels";
}

// Chunk `item` of all samples' chunks: its sample and first position, and its length.
struct Span {
  std::int64_t n, first, count;
};

Span span_of(const Pointwise& p, std::int64_t item) {
  const std::int64_t chunks = chunks_of(p);
  const std::int64_t first = item % chunks * kChunk;
  return {item / chunks, first, std::min(kChunk, p.positions - first)};
}

__attribute__((target_clones("avx2", "default"))) void forward_chunk(const Pointwise& p,
                                                                     const float* x, const float* w,
                                                                     const float* b, float* y,
                                                                     std::int64_t count) {
  std::array<std::array<float, kChunk>, kPointwiseMaxOutChannels> sums;
  for (std::int64_t o = 0; o < p.out_channels; ++o) {
    std::fill_n(sums[static_cast<std::size_t>(o)].begin(), count, b ? b[o] : 0.0f);
  }
  for (std::int64_t c = 0; c < p.in_channels; ++c) {
    const float* row = x + c * p.positions;
    for (std::int64_t o = 0; o < p.out_channels; ++o) {
      const float weight = w[o * p.in_channels + c];
      float* sum = sums[static_cast<std::size_t>(o)].data();
      if (b == nullptr && c == 0) {
        for (std::int64_t v = 0; v < count; ++v) {
          sum[v] = weight * row[v];
        }
        continue;
      }
      for (std::int64_t v = 0; v < count; ++v) {
        sum[v] += weight * row[v];
      }
    }
  }
  for (std::int64_t o = 0; o < p.out_channels; ++o) {
    std::copy_n(sums[static_cast<std::size_t>(o)].begin(), count, y + o * p.positions);
  }
}

__attribute__((target_clones("avx2", "default"))) void backward_data_chunk(
    const Pointwise& p, const float* dy, const float* w, float* dx, std::int64_t count) {
  for (std::int64_t c = 0; c < p.in_channels; ++c) {
    float* out = dx + c * p.positions;
    const float first = w[c];
    for (std::int64_t v = 0; v < count; ++v) {
      out[v] = first * dy[v];
    }
    for (std::int64_t o = 1; o < p.out_channels; ++o) {
      const float weight = w[o * p.in_channels + c];
      const float* row = dy + o * p.positions;
      for (std::int64_t v = 0; v < count; ++v) {
        out[v] += weight * row[v];
      }
    }
  }
}

// sums[o * in_channels + c] = the chunk's sum of dy[o] x[c]; sums[out * in + o] = of dy[o].
__attribute__((target_clones("avx2", "default"))) void backward_weights_chunk(
    const Pointwise& p, const float* x, const float* dy, double* sums, std::int64_t count) {
  const std::int64_t whole = count / kLanes * kLanes;
  // The lanes' float sums added in double in lane order, then the last values one by one.
  const auto total = [&](const std::array<float, kLanes>& lanes, auto value) {
    double sum = 0.0;
    for (const float lane : lanes) {
      sum += lane;
    }
    for (std::int64_t v = whole; v < count; ++v) {
      sum += static_cast<double>(value(v));
    }
    return sum;
  };
  const auto dot = [&](const float* a, const float* b) {
    std::array<float, kLanes> lanes{};
    for (std::int64_t v = 0; v < whole; v += kLanes) {
      for (std::int64_t l = 0; l < kLanes; ++l) {
        lanes[static_cast<std::size_t>(l)] += a[v + l] * b[v + l];
      }
    }
    return total(lanes, [&](std::int64_t v) { return a[v] * b[v]; });
  };
  const auto plain_sum = [&](const float* a) {
    std::array<float, kLanes> lanes{};
    for (std::int64_t v = 0; v < whole; v += kLanes) {
      for (std::int64_t l = 0; l < kLanes; ++l) {
        lanes[static_cast<std::size_t>(l)] += a[v + l];
      }
    }
    return total(lanes, [&](std::int64_t v) { return a[v]; });
  };
  for (std::int64_t o = 0; o < p.out_channels; ++o) {
    const float* g = dy + o * p.positions;
    for (std::int64_t c = 0; c < p.in_channels; ++c) {
      sums[o * p.in_channels + c] = dot(g, x + c * p.positions);
    }
    sums[p.out_channels * p.in_channels + o] = plain_sum(g);
  }
}

// work(item, span) for each chunk of each sample, on the threads.
template <typename Work>
void each_chunk(const Pointwise& p, int threads, Work work) {
  check(p);
  const std::int64_t items = p.batch * chunks_of(p);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t item = 0; item < items; ++item) {
    work(item, span_of(p, item));
  }
}

}  // namespace

void pointwise_forward(const Pointwise& p, const float* x, const float* w, const float* b, float* y,
                       int threads) {
  each_chunk(p, threads, [&](std::int64_t /*item*/, const Span& s) {
    forward_chunk(p, x + s.n * p.in_channels * p.positions + s.first, w, b,
                  y + s.n * p.out_channels * p.positions + s.first, s.count);
  });
}

void pointwise_backward_data(const Pointwise& p, const float* dy, const float* w, float* dx,
                             int threads) {
  each_chunk(p, threads, [&](std::int64_t /*item*/, const Span& s) {
    backward_data_chunk(p, dy + s.n * p.out_channels * p.positions + s.first, w,
                        dx + s.n * p.in_channels * p.positions + s.first, s.count);
  });
}

void pointwise_backward_weights(const Pointwise& p, const float* x, const float* dy, float* dw,
                                float* db, int threads) {
  check(p);
  const std::int64_t items = p.batch * chunks_of(p);
  const std::int64_t per_item = p.out_channels * (p.in_channels + 1);
  std::vector<double> sums(static_cast<std::size_t>(items * per_item));
  each_chunk(p, threads, [&](std::int64_t item, const Span& s) {
    backward_weights_chunk(p, x + s.n * p.in_channels * p.positions + s.first,
                           dy + s.n * p.out_channels * p.positions + s.first,
                           sums.data() + item * per_item, s.count);
  });
  for (std::int64_t k = 0; k < per_item; ++k) {
    double total = 0.0;
    for (std::int64_t item = 0; item < items; ++item) {
      total += sums[static_cast<std::size_t>(item * per_item + k)];
    }
    if (k < p.out_channels * p.in_channels) {
      dw[k] += static_cast<float>(total);
    } else if (db != nullptr) {
      db[k - p.out_channels * p.in_channels] += static_cast<float>(total);
    }
  }
}

}  // namespace cajal::engine::detail
