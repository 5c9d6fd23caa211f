#include "io/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/train/data.h"
#include "engine/train/loss.h"
#include "engine/train/optimizer.h"
#include "tests/train/linear_model.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

const fs::path kFashion = "/usr/share/datasets/fashion-mnist";

std::vector<std::uint8_t> idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims,
                                    std::size_t data_bytes) {
  std::vector<std::uint8_t> bytes{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (const auto d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      bytes.push_back(static_cast<std::uint8_t>(d >> shift));
  }
  for (std::size_t i = 0; i < data_bytes; ++i)
    bytes.push_back(static_cast<std::uint8_t>(i * 7));
  return bytes;
}

std::string error_of(const std::vector<std::uint8_t>& bytes) {
  try {
    parse_idx(bytes, "t.idx");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Idx, ParsesAWellFormedArray) {
  const auto array = parse_idx(idx_bytes(0x08, {2, 3}, 6), "t.idx");
  EXPECT_EQ(array.dims, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(array.values.size(), 6u);
  EXPECT_EQ(array.values[1], 7);
}

// Each damage gives its own message: what, expected, got.
TEST(Idx, RejectsDamagedBytesWithClearMessages) {
  EXPECT_EQ(error_of({0, 0, 8}), "t.idx: IDX magic: expected 4 bytes, got 3 bytes");
  EXPECT_EQ(error_of({1, 0, 8, 1, 0, 0, 0, 0}),
            "t.idx: IDX magic: expected first two bytes 0x00 0x00, got 0x01 0x00");
  EXPECT_EQ(error_of(idx_bytes(0x0D, {2}, 8)),
            "t.idx: IDX data type: expected 0x08 (unsigned byte), got 0x0d (float32)");
  EXPECT_EQ(error_of(idx_bytes(0x08, {}, 0)), "t.idx: IDX rank: expected 1 to 8, got 0");
  auto header_cut = idx_bytes(0x08, {2, 3}, 0);
  header_cut.resize(10);
  EXPECT_EQ(error_of(header_cut), "t.idx: IDX header: expected 12 bytes for rank 2, got 10 bytes");
  EXPECT_EQ(error_of(idx_bytes(0x08, {2, 3}, 5)),
            "t.idx: IDX data length for dims [2,3]: expected the product of the dims, got 5 "
            "bytes after the header");
  EXPECT_NE(error_of(idx_bytes(0x08, {2, 3}, 7)).find("got 7 bytes"), std::string::npos);
  EXPECT_NE(error_of(idx_bytes(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}, 4))
                .find("[4294967295,4294967295,4294967295]"),
            std::string::npos);
}

class IdxFile : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const auto path = fs::path(::testing::TempDir()) / name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  fs::path write_gzip(const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const auto path = fs::path(::testing::TempDir()) / name;
    gzFile file = gzopen(path.c_str(), "wb");
    gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(file);
    return path;
  }
};

TEST_F(IdxFile, ReadsPlainAndGzipFiles) {
  const auto bytes = idx_bytes(0x08, {4, 2, 2}, 16);
  EXPECT_EQ(read_idx(write("plain.idx", bytes)).values, read_idx(write_gzip("z.gz", bytes)).values);
}

TEST_F(IdxFile, RejectsTruncatedGzipAndMissingFiles) {
  const auto gz = write_gzip("full.gz", idx_bytes(0x08, {100}, 100));
  std::ifstream in(gz, std::ios::binary);
  std::vector<std::uint8_t> packed((std::istreambuf_iterator<char>(in)), {});
  packed.resize(packed.size() / 2);
  EXPECT_THROW(read_idx(write("cut.gz", packed)), Error);
  auto truncated = idx_bytes(0x08, {10, 10}, 100);
  truncated.pop_back();
  EXPECT_THROW(read_idx(write("cut.idx", truncated)), Error);
  EXPECT_THROW(read_idx(fs::path(::testing::TempDir()) / "does-not-exist.idx"), Error);
}

// Debian's dataset-fashion-mnist: the first label of both sets is 9 (ankle boot); checksums of
// the pixels computed with gzip -dc and Python.
TEST(IdxFashionMnist, ReadsTheRealFiles) {
  if (!fs::exists(kFashion / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  const auto labels = read_idx(kFashion / "t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(labels.dims, (std::vector<std::int64_t>{10000}));
  EXPECT_EQ(labels.values.at(0), 9);
  const auto images = read_idx(kFashion / "t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(images.dims, (std::vector<std::int64_t>{10000, 28, 28}));
  const auto first_sum =
      std::accumulate(images.values.begin(), images.values.begin() + 784, std::uint64_t{0});
  EXPECT_EQ(first_sum, 33456u);
  const auto train = read_idx(kFashion / "train-images-idx3-ubyte.gz");
  EXPECT_EQ(train.dims, (std::vector<std::int64_t>{60000, 28, 28}));
  EXPECT_EQ(std::accumulate(train.values.begin(), train.values.end(), std::uint64_t{0}),
            3431114169u);
  EXPECT_EQ(read_idx(kFashion / "train-labels-idx1-ubyte.gz").values.at(0), 9);
}

// Softmax regression on 2000 test-set images for 3 epochs, scored on 2000 others: the reader,
// sampler, batches, cross-entropy and SGD together learn real data (chance is 10 %).
TEST(IdxFashionMnist, LinearClassifierLearnsFromTheReader) {
  if (!fs::exists(kFashion / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  using namespace cajal::engine;
  const auto images = read_idx(kFashion / "t10k-images-idx3-ubyte.gz");
  const auto labels = read_idx(kFashion / "t10k-labels-idx1-ubyte.gz");
  constexpr std::int64_t kPixels = 28 * 28;
  std::vector<Tensor> x;
  for (std::int64_t i = 0; i < 4000; ++i) {
    std::vector<float> pixels(kPixels);
    for (std::int64_t p = 0; p < kPixels; ++p) {
      pixels[static_cast<std::size_t>(p)] =
          images.values[static_cast<std::size_t>(i * kPixels + p)] / 255.0f;
    }
    x.emplace_back(Dims{kPixels}, std::move(pixels));
  }
  std::vector<std::int64_t> train_indices(2000);
  std::iota(train_indices.begin(), train_indices.end(), 0);
  train::testing::LinearModel model(10, kPixels);
  train::Optimizer optimizer({.learning_rate = 0.05, .momentum = 0.9}, model.parameters());
  train::EpochSampler sampler(train_indices, {.batch_size = 32, .seed = 3});
  for (std::int64_t step = 0; step < 3 * sampler.batches_per_epoch(); ++step) {
    std::vector<const Tensor*> samples;
    std::vector<float> y;
    for (const auto i : sampler.next_batch()) {
      samples.push_back(&x[static_cast<std::size_t>(i)]);
      y.push_back(labels.values[static_cast<std::size_t>(i)]);
    }
    const auto batch = train::stack_batch(samples);
    const auto out =
        train::cross_entropy(model.forward(batch), Tensor({batch.dim(0)}, std::move(y)), {});
    model.backward(batch, out.diff_logits);
    optimizer.step();
  }
  std::vector<const Tensor*> held_out;
  for (std::size_t i = 2000; i < 4000; ++i)
    held_out.push_back(&x[i]);
  const auto logits = model.forward(train::stack_batch(held_out));
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < 2000; ++i) {
    const float* row = logits.data() + i * 10;
    correct +=
        std::max_element(row, row + 10) - row == labels.values[static_cast<std::size_t>(2000 + i)];
  }
  EXPECT_GT(static_cast<double>(correct) / 2000.0, 0.70) << correct << " of 2000";
}

}  // namespace
}  // namespace cajal::io
