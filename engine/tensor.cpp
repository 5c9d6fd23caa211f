#include "engine/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace cajal::engine {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::align_val_t alignment_for(std::size_t bytes) {
  return std::align_val_t{bytes >= kHugePageBlockBytes ? kHugePage : 64};
}

}  // namespace

void* allocate_aligned(std::size_t bytes) {
  void* p = ::operator new(bytes, alignment_for(bytes));
  if (bytes >= kHugePageBlockBytes) {
    // Advice only: where transparent huge pages are off, nothing changes.
    (void)::madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
  }
  return p;
}

void free_aligned(void* p, std::size_t bytes) noexcept {
  ::operator delete(p, alignment_for(bytes));
}

std::string to_string(const Dims& dims) {
  std::string text = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    text += (i ? "," : "") + std::to_string(dims[i]);
  }
  return text + "]";
}

std::int64_t element_count(const Dims& dims) {
  std::int64_t count = 1;
  for (const auto d : dims) {
    CAJAL_CHECK(d >= 0) << "negative dim in " << to_string(dims);
    count *= d;
  }
  return count;
}

Tensor::Tensor(Dims dims, float fill)
    : dims_(std::move(dims)), values_(static_cast<std::size_t>(element_count(dims_)), fill) {}

Tensor::Tensor(Dims dims, std::vector<float> values) : dims_(std::move(dims)) {
  const auto expected = element_count(dims_);
  if (static_cast<std::int64_t>(values.size()) != expected) {
    throw Error("tensor of dims " + to_string(dims_), std::to_string(expected) + " values",
                std::to_string(values.size()));
  }
  values_.assign(values.begin(), values.end());
}

Tensor Tensor::view(float* data, Dims dims) {
  Tensor t;
  t.view_size_ = element_count(dims);
  t.dims_ = std::move(dims);
  t.view_ = data;
  return t;
}

Tensor::Tensor(const Tensor& other) : dims_(other.dims_) {
  const auto values = other.values();
  values_.assign(values.begin(), values.end());
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) {
    const auto values = other.values();
    values_.assign(values.begin(), values.end());  // reuses this tensor's storage
    dims_ = other.dims_;
    view_ = nullptr;
    view_size_ = 0;
  }
  return *this;
}

void Tensor::reshape(Dims dims) {
  CAJAL_CHECK(view_ == nullptr) << "reshape of a tensor view";
  dims_ = std::move(dims);
  resize_zeroed(values_, static_cast<std::size_t>(element_count(dims_)));
}

void resize_zeroed(std::vector<float, AlignedAllocator<float>>& values, std::size_t size) {
  const std::size_t old = std::min(values.size(), size);
  values.resize(size);
  constexpr std::size_t kBlock = std::size_t{1} << 18;  // floats: 1 MiB
  const auto blocks = static_cast<std::int64_t>((size - old + kBlock - 1) / kBlock);
  float* data = values.data();
#pragma omp parallel for schedule(static) if (blocks > 4)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::size_t start = old + static_cast<std::size_t>(b) * kBlock;
    std::fill(data + start, data + std::min(size, start + kBlock), 0.0f);
  }
}

}  // namespace cajal::engine
