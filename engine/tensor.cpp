#include "engine/tensor.h"

#include <utility>

#include "core/error.h"

namespace cajal::engine {

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

void Tensor::reshape(Dims dims) {
  dims_ = std::move(dims);
  values_.resize(static_cast<std::size_t>(element_count(dims_)));
}

}  // namespace cajal::engine
