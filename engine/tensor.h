// Tensor: f32 values with dims N C [D] H W, contiguous in that order (PyTorch's layout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cajal::engine {

using Dims = std::vector<std::int64_t>;

// Storage of `bytes` aligned to 64 bytes (a cache line, an AVX-512 vector): oneDNN's jit kernels
// may use aligned loads and stores (its 2.6 resampling crashes on a destination that
// std::vector's 16-byte alignment leaves unaligned), and aligned rows are faster anyway. Blocks
// of 4 MiB or more are aligned to 2 MiB and offered to the kernel for transparent huge pages
// (madvise): a 3D network's activations are gigabytes, and 4 KiB pages cost a page fault every
// 4 KiB. Freed, such blocks keep their pages, which later large blocks of any size are made of
// before fresh ones (memory touched for the first time is slow on virtual machines), as long as
// the pages lent and kept add up to no more than the most ever lent at once. Free with the same
// byte count.
constexpr std::size_t kHugePageBlockBytes = std::size_t{4} << 20;
void* allocate_aligned(std::size_t bytes);
void free_aligned(void* p, std::size_t bytes) noexcept;
// Frees `p` if allocate_aligned lent it as a block of kHugePageBlockBytes or more and returns
// true; false otherwise (the cajal binary's operator delete, which sees every block).
bool free_large_block(void* p) noexcept;
// Bytes of the blocks of kHugePageBlockBytes or more: lent now, kept for reuse, and the most
// ever lent at once (lent + kept never exceed it).
struct LargeBlockBytes {
  std::size_t lent = 0;
  std::size_t kept = 0;
  std::size_t peak = 0;
};
LargeBlockBytes large_block_bytes();

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  explicit AlignedAllocator(const AlignedAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_aligned(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { free_aligned(p, n * sizeof(T)); }
  // resize() leaves new elements unwritten (default-initialised): the two that grow (Tensor and
  // the scratch) zero them with resize_zeroed, on all threads, so a large buffer's pages are
  // first touched (and cleared by the kernel) in parallel rather than by one memset.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>& /*other*/) const {
    return true;
  }
};

// values.resize(size), the new elements zero (as std::vector's resize makes them), written on the
// OpenMP threads when there are many.
void resize_zeroed(std::vector<float, AlignedAllocator<float>>& values, std::size_t size);

// "[16,1,3,3,3]"
std::string to_string(const Dims& dims);
// Product of the dims; 1 for no dims.
std::int64_t element_count(const Dims& dims);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Dims dims, float fill = 0.0f);
  // Throws cajal::Error if values.size() does not match the dims.
  Tensor(Dims dims, std::vector<float> values);

  // A tensor over values at `data` that it does not own (Net: a layer's output written straight
  // into its channels of a concat's buffer). A copy of a view owns its values.
  static Tensor view(float* data, Dims dims);
  bool is_view() const { return view_ != nullptr; }
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  ~Tensor() = default;

  const Dims& dims() const { return dims_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  std::int64_t dim(int axis) const { return dims_.at(static_cast<std::size_t>(axis)); }
  std::int64_t size() const {
    return view_ ? view_size_ : static_cast<std::int64_t>(values_.size());
  }

  float* data() { return view_ ? view_ : values_.data(); }
  const float* data() const { return view_ ? view_ : values_.data(); }
  std::span<float> values() { return {data(), static_cast<std::size_t>(size())}; }
  std::span<const float> values() const { return {data(), static_cast<std::size_t>(size())}; }

  // New dims; keeps the storage's capacity, so a reused buffer does not reallocate. Not for a
  // view.
  void reshape(Dims dims);
  // As reshape(), but values past the old size are left unwritten rather than zeroed: for an
  // output that the next step writes whole (Net::forward's activations). With the environment
  // variable CAJAL_POISON_ACTIVATIONS set they are NaN instead, so that a layer leaving part of
  // its output unwritten shows (the engine's tests run once so).
  void reshape_for_overwrite(Dims dims);
  // Reserves storage for this many values without changing the dims.
  void reserve(std::int64_t count) { values_.reserve(static_cast<std::size_t>(count)); }
  std::int64_t capacity() const { return static_cast<std::int64_t>(values_.capacity()); }

 private:
  Dims dims_;
  std::vector<float, AlignedAllocator<float>> values_;
  float* view_ = nullptr;  // a view's values (values_ empty)
  std::int64_t view_size_ = 0;
};

}  // namespace cajal::engine
