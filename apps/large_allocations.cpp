// The cajal binary's operator new: blocks of 4 MiB or more (volumes of a CT: a 512 x 512 x 300
// float volume is 315 MB, and segmenting one makes a dozen of them) come from
// engine::allocate_aligned, aligned to 2 MiB and offered to the kernel for transparent huge
// pages, so touching them costs one page fault per 2 MiB instead of one per 4 KiB; deleted, their
// pages are kept for the next large blocks (engine/tensor.h says how many). Smaller blocks come
// from malloc and go back with free(); malloc keeps their pages too (below).
#include <malloc.h>

#include <cstddef>
#include <cstdlib>
#include <limits>
#include <new>

#include "engine/tensor.h"

namespace {

// glibc's malloc, for the blocks below kHugePageBlockBytes, keeps the pages it frees: blocks from
// 128 KiB up are no longer each mapped afresh (a fixed threshold at the pool's size), and the
// heap's top is not given back to the kernel. The same blocks allocated and freed every training
// step (a 64^3 U-Net's 2 MB gradients, loss and label arrays) then reuse their pages: bench/train's
// 3D U-Net faulted in about 940 pages a step (its loss: 2.2 ms of 5.6 in zeroing fresh pages).
// What the process holds grows by at most its largest set of such blocks alive at once.
const bool kMallocKeepsPages = [] {
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(cajal::engine::kHugePageBlockBytes));
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  return true;
}();

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
