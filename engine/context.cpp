#include "engine/context.h"

#include <omp.h>

#include "engine/detail/dnnl_util.h"

namespace cajal::engine {

Context::Context(int threads) : impl_(std::make_shared<detail::ContextImpl>()) {
  if (threads > 0) {
    omp_set_num_threads(threads);
  }
  impl_->threads = omp_get_max_threads();
}

Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

int Context::threads() const {
  return impl_->threads;
}

}  // namespace cajal::engine
