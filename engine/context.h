// Context: where layers run (oneDNN's CPU engine and a stream) and on how many threads.
#pragma once

#include <memory>

namespace cajal::engine {

namespace detail {
struct ContextImpl;
}

class Context {
 public:
  // threads <= 0 keeps oneDNN's default (all cores). The thread count is set for the calling
  // thread's OpenMP team, so run forward() from the thread that made the Context. The same input
  // and thread count give the same bytes. Layers prepared with a Context keep its engine and
  // stream alive, so it may go out of scope before them.
  explicit Context(int threads = 0);
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int threads() const;
  // For the engine's own layers only; a prepared layer keeps it alive.
  const std::shared_ptr<detail::ContextImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<detail::ContextImpl> impl_;
};

}  // namespace cajal::engine
