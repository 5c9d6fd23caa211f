// Blocks of kHugePageBlockBytes or more: freed pages lent again (moved, with what they held),
// blocks assembled from several freed ones, and the bound on lent plus kept bytes.
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "engine/tensor.h"

namespace cajal::engine {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

void fill(void* block, std::size_t bytes, float value) {
  auto* values = static_cast<float*>(block);
  std::fill(values, values + bytes / sizeof(float), value);
}

// How many of the floats in [from, to) bytes of `block` equal `value`.
std::size_t count_equal(const void* block, std::size_t from, std::size_t to, float value) {
  const auto* values = static_cast<const float*>(block);
  return static_cast<std::size_t>(
      std::count(values + from / sizeof(float), values + to / sizeof(float), value));
}

void expect_bounded() {
  const LargeBlockBytes bytes = large_block_bytes();
  EXPECT_LE(bytes.lent + bytes.kept, bytes.peak)
      << "lent " << bytes.lent << ", kept " << bytes.kept;
}

TEST(LargeBlocks, AFreedBlocksPagesAreLentAgainWithWhatTheyHeld) {
  const std::size_t bytes = 8 * kMiB;
  void* first = allocate_aligned(bytes);
  fill(first, bytes, 1.5f);
  free_aligned(first, bytes);
  // Fresh pages would read as zeros.
  void* second = allocate_aligned(bytes);
  EXPECT_EQ(count_equal(second, 0, bytes, 1.5f), bytes / sizeof(float));
  free_aligned(second, bytes);
  expect_bounded();
}

TEST(LargeBlocks, ABlockIsAssembledFromTheLastFreedBlocksThenFreshPages) {
  void* a = allocate_aligned(4 * kMiB);
  void* b = allocate_aligned(6 * kMiB);
  fill(a, 4 * kMiB, 1.0f);
  fill(b, 6 * kMiB, 2.0f);
  free_aligned(a, 4 * kMiB);
  free_aligned(b, 6 * kMiB);
  const LargeBlockBytes before = large_block_bytes();
  const std::size_t bytes = before.kept + 8 * kMiB;
  void* whole = allocate_aligned(bytes);
  // The last freed first: b's pages, then a's, then whatever else was kept, then fresh pages.
  EXPECT_EQ(count_equal(whole, 0, 6 * kMiB, 2.0f), 6 * kMiB / sizeof(float));
  EXPECT_EQ(count_equal(whole, 6 * kMiB, 10 * kMiB, 1.0f), 4 * kMiB / sizeof(float));
  EXPECT_EQ(count_equal(whole, before.kept, bytes, 0.0f), 8 * kMiB / sizeof(float));
  EXPECT_EQ(large_block_bytes().kept, 0u);
  // Every page of the block is writable, across the seams.
  fill(whole, bytes, 3.0f);
  EXPECT_EQ(count_equal(whole, 0, bytes, 3.0f), bytes / sizeof(float));
  expect_bounded();
  free_aligned(whole, bytes);
  expect_bounded();
}

TEST(LargeBlocks, ABlockOfManyFreedPiecesTakesFreshPagesAndTheRestKeptGoes) {
  // More freed blocks than one block is assembled from: the remainder comes fresh, and as many
  // kept bytes are released, so lent plus kept stays within the peak.
  std::vector<void*> blocks;
  for (int i = 0; i < 66; ++i) {
    blocks.push_back(allocate_aligned(4 * kMiB));
  }
  for (void* block : blocks) {
    free_aligned(block, 4 * kMiB);
    expect_bounded();
  }
  const LargeBlockBytes before = large_block_bytes();
  void* whole = allocate_aligned(before.kept);
  fill(whole, before.kept, 1.0f);
  expect_bounded();
  free_aligned(whole, before.kept);
  expect_bounded();
}

// Fresh pages of 32 MiB or more are touched (on the OpenMP threads) before the block is lent:
// all resident at once, where untouched fresh pages would not be.
TEST(LargeBlocks, FreshPagesAreTouchedBeforeTheBlockIsLent) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const std::size_t bytes = large_block_bytes().kept + 64 * kMiB;
  void* block = allocate_aligned(bytes);
  omp_set_num_threads(threads);
  // The last 32 MiB are fresh (kept pages come first).
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident(32 * kMiB / page);
  char* tail = static_cast<char*>(block) + bytes - 32 * kMiB;
  ASSERT_EQ(::mincore(tail, 32 * kMiB, resident.data()), 0);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            static_cast<std::ptrdiff_t>(resident.size()));
  EXPECT_EQ(count_equal(block, bytes - 32 * kMiB, bytes, 0.0f), 32 * kMiB / sizeof(float));
  free_aligned(block, bytes);
  expect_bounded();
}

TEST(LargeBlocks, OnlyLentBlocksAreFreedAsSuch) {
  EXPECT_FALSE(free_large_block(nullptr));
  void* small = std::malloc(64);
  EXPECT_FALSE(free_large_block(small));
  std::free(small);
  void* block = allocate_aligned(kHugePageBlockBytes);
  EXPECT_TRUE(free_large_block(block));
  EXPECT_FALSE(free_large_block(block)) << "freed twice";
  expect_bounded();
}

}  // namespace
}  // namespace cajal::engine
