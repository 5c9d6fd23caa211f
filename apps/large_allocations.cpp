// The cajal binary's operator new: blocks of 4 MiB or more (volumes of a CT: a 512 x 512 x 300
// float volume is 315 MB, and segmenting one makes a dozen of them) come from
// engine::allocate_aligned, aligned to 2 MiB and offered to the kernel for transparent huge
// pages, so touching them costs one page fault per 2 MiB instead of one per 4 KiB; deleted, their
// pages are kept for the next large blocks (engine/tensor.h says how many). Smaller blocks come
// from malloc and go back with free().
#include <cstddef>
#include <cstdlib>
#include <new>

#include "engine/tensor.h"

namespace {

// Large blocks take the engine's huge-page allocation (aligned new, which releases with free()).
void* allocate(std::size_t bytes) noexcept {
  if (bytes < cajal::engine::kHugePageBlockBytes) {
    return std::malloc(bytes == 0 ? 1 : bytes);
  }
  try {
    return cajal::engine::allocate_aligned(bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void release(void* p) noexcept {
  if (!cajal::engine::free_large_block(p)) {
    std::free(p);
  }
}

}  // namespace

void* operator new(std::size_t bytes) {
  void* p = allocate(bytes);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}

void* operator new[](std::size_t bytes) {
  return operator new(bytes);
}

void* operator new(std::size_t bytes, const std::nothrow_t& /*tag*/) noexcept {
  return allocate(bytes);
}

void* operator new[](std::size_t bytes, const std::nothrow_t& /*tag*/) noexcept {
  return allocate(bytes);
}

void operator delete(void* p) noexcept {
  release(p);
}

void operator delete[](void* p) noexcept {
  release(p);
}

void operator delete(void* p, std::size_t /*bytes*/) noexcept {
  release(p);
}

void operator delete[](void* p, std::size_t /*bytes*/) noexcept {
  release(p);
}

void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  release(p);
}

void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  release(p);
}
