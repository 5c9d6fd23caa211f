#include "engine/tensor.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace cajal::engine {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// True while this thread holds PagePool's lock. The pool's own containers allocate and free
// small blocks meanwhile (a node of lent_, kept_'s old storage), and with the cajal binary's
// operator delete every block freed asks free_large_block whether it is a lent one: a small block
// that happened to start on a 2 MiB boundary took the lock again on the same thread and hung the
// process (bench/train's U-Net, 2026-11-29: PagePool::free, lent_.erase, operator delete,
// free_large_block, the mutex). No lent block is freed there, so free_large_block answers no.
thread_local bool in_page_pool = false;

// The lock of PagePool, with in_page_pool set while it is held.
class PoolLock {
 public:
  explicit PoolLock(std::mutex& mutex) : lock_(mutex) { in_page_pool = true; }
  ~PoolLock() { in_page_pool = false; }
  PoolLock(const PoolLock&) = delete;
  PoolLock& operator=(const PoolLock&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
};

// The pages of freed blocks of kHugePageBlockBytes or more, kept and moved (mremap, no copy) into
// the next large blocks. On the virtual machines cajal runs on, memory the process has not
// touched before costs 0.8-3.6 s per GB to touch (the host backs it page by page; touching it
// again costs 0.05 s per GB), and segmenting a 512 x 512 x 300 CT allocated and freed about 7 GB
// of such blocks (the network's activations, its layout scratch, the volumes before and after
// it) with at most about 1.6 GB lent at once. A block is assembled from kept pages first, most
// recently freed first, and fresh pages for the rest, so the pages lent plus the pages kept
// never exceed the most ever lent at once: keeping adds nothing to the peak beyond the rounding
// of blocks to 2 MiB and pages lent but never touched (bench CT: peak RSS 1.62 -> 1.64 GiB).
// Kept pages are released when the process ends. Fresh pages are touched on all the cores
// before the block is lent (prefault below): bench CT after the machine idled, read stage
// 1.11-1.29 s -> 0.73-1.05 s.
class PagePool {
 public:
  static PagePool& instance() {
    // Never destroyed: blocks may be freed by static destructors after main returns.
    static PagePool* const pool = new PagePool;
    return *pool;
  }

  void* allocate(std::size_t bytes) {
    const std::size_t capacity = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    Segment fresh{nullptr, 0};
    char* const block = lend(capacity, fresh);
    prefault(fresh);
    return block;
  }

  LargeBlockBytes bytes() {
    const PoolLock lock(mutex_);
    return {lent_bytes_, kept_bytes_, peak_bytes_};
  }

  // False when `p` is not a block lent by allocate().
  bool free(void* p) noexcept {
    if (in_page_pool) {
      return false;  // a block of the pool's own containers (in_page_pool)
    }
    const PoolLock lock(mutex_);
    const auto lent = lent_.find(p);
    if (lent == lent_.end()) {
      return false;
    }
    lent_bytes_ -= lent->second.capacity;
    for (const Segment& segment : lent->second.segments) {
      try {
        kept_.push_back(segment);
        kept_bytes_ += segment.bytes;
      } catch (const std::bad_alloc&) {
        ::munmap(segment.start, segment.bytes);
      }
    }
    lent_.erase(lent);
    return true;
  }

 private:
  // Pages within one mapping.
  struct Segment {
    char* start;
    std::size_t bytes;
  };

  // allocate()'s part under the lock: the block, its pages from the kept ones first; `fresh` the
  // pages never touched.
  char* lend(std::size_t capacity, Segment& fresh) {
    const PoolLock lock(mutex_);
    auto* block = static_cast<char*>(map_aligned(capacity));
    std::vector<Segment>* lent_segments = nullptr;
    try {
      Lent& lent = lent_[block];
      lent.capacity = capacity;
      lent.segments.reserve(kMaxSegments);
      lent_segments = &lent.segments;
    } catch (const std::bad_alloc&) {
      lent_.erase(block);
      ::munmap(block, capacity);
      throw;
    }
    std::vector<Segment>& segments = *lent_segments;
    std::size_t filled = 0;
    // Kept segments moved in one by one (mremap moves within one mapping at a time); a block of
    // more than kMaxSegments takes fresh pages for the rest, and the oldest kept pages go.
    while (filled < capacity && !kept_.empty() && segments.size() + 1 < kMaxSegments) {
      Segment& from = kept_.back();
      const std::size_t n = std::min(from.bytes, capacity - filled);
      if (::mremap(from.start, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, block + filled) == MAP_FAILED) {
        break;
      }
      segments.push_back({block + filled, n});
      filled += n;
      kept_bytes_ -= n;
      if (n == from.bytes) {
        kept_.pop_back();
      } else {
        from.start += n;
        from.bytes -= n;
      }
    }
    if (filled < capacity) {
      segments.push_back({block + filled, capacity - filled});
      fresh = segments.back();
      // Advice only: where transparent huge pages are off, nothing changes.
      (void)::madvise(block + filled, capacity - filled, MADV_HUGEPAGE);
    }
    lent_bytes_ += capacity;
    peak_bytes_ = std::max(peak_bytes_, lent_bytes_);
    while (lent_bytes_ + kept_bytes_ > peak_bytes_) {
      Segment& oldest = kept_.front();
      const std::size_t n = std::min(oldest.bytes, lent_bytes_ + kept_bytes_ - peak_bytes_);
      ::munmap(oldest.start, n);
      kept_bytes_ -= n;
      if (n == oldest.bytes) {
        kept_.erase(kept_.begin());
      } else {
        oldest.start += n;
        oldest.bytes -= n;
      }
    }
    return block;
  }

  struct Lent {
    std::size_t capacity;
    std::vector<Segment> segments;
  };
  static constexpr std::size_t kMaxSegments = 64;
  static constexpr std::size_t kPrefaultBytes = std::size_t{32} << 20;

  // Touches every page of `fresh` on the OpenMP threads, one 2 MiB stretch each at a time, when
  // there are 32 MiB or more of them and no parallel region runs: the kernel's clearing of
  // pages never touched before (the costly part of new memory on the virtual machines above)
  // is then shared by the cores instead of falling on the one thread that fills the block (a
  // std::vector's value-initialisation, for one). The pages hold zeros either way.
  static void prefault(const Segment& fresh) {
    if (fresh.bytes < kPrefaultBytes || omp_in_parallel() || omp_get_max_threads() < 2) {
      return;
    }
    const auto stretches = static_cast<std::int64_t>((fresh.bytes + kHugePage - 1) / kHugePage);
    volatile char* const start = fresh.start;
#pragma omp parallel for schedule(static)
    for (std::int64_t h = 0; h < stretches; ++h) {
      const std::size_t begin = static_cast<std::size_t>(h) * kHugePage;
      for (std::size_t at = begin; at < std::min(fresh.bytes, begin + kHugePage); at += 4096) {
        start[at] = 0;
      }
    }
  }

  // `bytes` of fresh address space aligned to 2 MiB (for huge pages and for moving them whole).
  static void* map_aligned(std::size_t bytes) {
    void* mapped = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) {
      throw std::bad_alloc();
    }
    auto* start = static_cast<char*>(mapped);
    char* aligned =
        start + (kHugePage - reinterpret_cast<std::uintptr_t>(start) % kHugePage) % kHugePage;
    if (aligned > start) {
      ::munmap(start, static_cast<std::size_t>(aligned - start));
    }
    const std::size_t tail = kHugePage - static_cast<std::size_t>(aligned - start);
    ::munmap(aligned + bytes, tail);
    return aligned;
  }

  std::mutex mutex_;
  std::unordered_map<void*, Lent> lent_;
  std::vector<Segment> kept_;  // oldest first
  std::size_t lent_bytes_ = 0;
  std::size_t kept_bytes_ = 0;
  std::size_t peak_bytes_ = 0;
};

}  // namespace

void* allocate_aligned(std::size_t bytes) {
  if (bytes >= kHugePageBlockBytes) {
    return PagePool::instance().allocate(bytes);
  }
  return ::operator new (bytes, std::align_val_t{64});
}

void free_aligned(void* p, std::size_t bytes) noexcept {
  if (bytes >= kHugePageBlockBytes && free_large_block(p)) {
    return;
  }
  ::operator delete (p, std::align_val_t{64});
}

bool free_large_block(void* p) noexcept {
  // Lent blocks start on a huge page: others are not looked up.
  return p != nullptr && reinterpret_cast<std::uintptr_t>(p) % kHugePage == 0 &&
         PagePool::instance().free(p);
}

LargeBlockBytes large_block_bytes() {
  return PagePool::instance().bytes();
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

namespace {

// values.resize(size), the new elements `value`, written on the OpenMP threads when there are many.
void resize_filled(std::vector<float, AlignedAllocator<float>>& values, std::size_t size,
                   float value) {
  const std::size_t old = std::min(values.size(), size);
  values.resize(size);
  constexpr std::size_t kBlock = std::size_t{1} << 18;  // floats: 1 MiB
  const auto blocks = static_cast<std::int64_t>((size - old + kBlock - 1) / kBlock);
  float* data = values.data();
#pragma omp parallel for schedule(static) if (blocks > 4)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::size_t start = old + static_cast<std::size_t>(b) * kBlock;
    std::fill(data + start, data + std::min(size, start + kBlock), value);
  }
}

bool poison_activations() {
  static const bool poison = std::getenv("CAJAL_POISON_ACTIVATIONS") != nullptr;
  return poison;
}

}  // namespace

void Tensor::reshape_for_overwrite(Dims dims) {
  CAJAL_CHECK(view_ == nullptr) << "reshape of a tensor view";
  dims_ = std::move(dims);
  const auto size = static_cast<std::size_t>(element_count(dims_));
  if (poison_activations()) {
    values_.clear();  // every value NaN, also those a previous layer left
    resize_filled(values_, size, std::numeric_limits<float>::quiet_NaN());
  } else {
    values_.resize(size);  // AlignedAllocator default-initialises: nothing written
  }
}

void resize_zeroed(std::vector<float, AlignedAllocator<float>>& values, std::size_t size) {
  resize_filled(values, size, 0.0f);
}

}  // namespace cajal::engine
