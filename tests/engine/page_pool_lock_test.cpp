// The page pool frees small blocks of its own containers while it holds its lock (a node of its
// map of lent blocks, a vector's old storage), and the cajal binary's operator delete asks
// free_large_block about every block freed (apps/large_allocations.cpp). A small block that
// started on a 2 MiB boundary made the pool take its lock again on the same thread: the process
// hung (bench/train, 2026-11-29). This binary's operator delete asks about a 2 MiB-aligned address
// at every free, as the cajal binary would about such a block.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <new>
#include <thread>

#include "engine/tensor.h"

namespace {

std::atomic<bool> probing{false};

void ask_about_an_aligned_block() {
  if (probing.load()) {
    // No block starts there: the answer is no, from inside the pool or from outside.
    static char* const aligned = reinterpret_cast<char*>(std::uintptr_t{64} << 30);
    (void)cajal::engine::free_large_block(aligned);
  }
}

}  // namespace

void* operator new(std::size_t bytes) {
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}

void operator delete(void* p) noexcept {
  ask_about_an_aligned_block();
  std::free(p);
}

void operator delete(void* p, std::size_t /*bytes*/) noexcept {
  ask_about_an_aligned_block();
  std::free(p);
}

namespace cajal::engine {
namespace {

TEST(LargeBlocks, FreeingOneNeverTakesThePoolsLockTwice) {
  // On a thread, so that a hang fails the test instead of stopping the run.
  auto done = std::async(std::launch::async, [] {
    probing = true;
    for (int i = 0; i < 8; ++i) {
      Tensor big({std::int64_t{1} << 21});  // 8 MiB: a lent block, freed at the end of the loop
      big.data()[0] = 1.0f;
    }
    probing = false;
  });
  if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    probing = false;  // this thread's frees would wait for the lock too
    std::fputs("FAILED: freeing a large block hung (the pool took its lock twice)\n", stderr);
    std::_Exit(1);
  }
  done.get();
}

}  // namespace
}  // namespace cajal::engine
