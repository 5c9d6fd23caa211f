#include "io/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A .npy file with this header text (padded to 64 bytes, newline-terminated unless `raw`) and
// these data bytes.
std::vector<std::uint8_t> make_npy(std::string header, const std::vector<std::uint8_t>& data,
                                   int major = 1, bool raw = false) {
  const std::size_t length_size = major == 1 ? 2 : 4;
  if (!raw) {
    const std::size_t preamble = 8 + length_size;
    header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
  }
  std::vector<std::uint8_t> bytes{0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major),
                                  0};
  for (std::size_t i = 0; i < length_size; ++i) {
    bytes.push_back(static_cast<std::uint8_t>((header.size() >> (8 * i)) & 0xff));
  }
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

template <typename T>
std::vector<std::uint8_t> raw_bytes(const std::vector<T>& values) {
  std::vector<std::uint8_t> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string f4_header(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

// The message of the cajal::Error that parsing `bytes` throws, or "" if it does not throw.
std::string parse_error(const std::vector<std::uint8_t>& bytes) {
  try {
    parse_npy(bytes, "x.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, RoundTripKeepsShapeAndValues) {
  const std::vector<float> values{1.5f, -2.0f, 0.0f, 3.25e-7f, 1e30f, -0.0f};
  for (const auto& shape :
       std::vector<std::vector<std::int64_t>>{{6}, {1, 2, 3}, {1, 1, 1, 2, 3}}) {
    const auto array = parse_npy(encode_npy(shape, values), "x.npy");
    EXPECT_EQ(array.shape, shape);
    EXPECT_EQ(array.data, values);
    EXPECT_EQ(array.source_dtype, "float32");
  }
}

TEST(Npy, RoundTripsScalarsAndEmptyArrays) {
  EXPECT_EQ(parse_npy(encode_npy({}, std::vector<float>{7.0f}), "x").data,
            std::vector<float>{7.0f});
  const auto empty = parse_npy(encode_npy({2, 0, 3}, std::vector<float>{}), "x");
  EXPECT_EQ(empty.shape, (std::vector<std::int64_t>{2, 0, 3}));
  EXPECT_TRUE(empty.data.empty());
}

TEST(Npy, EncodesNumpysHeaderPaddedTo64Bytes) {
  const auto bytes = encode_npy({2, 3}, std::vector<float>(6, 1.0f));
  const std::size_t header_length = bytes[8] | (bytes[9] << 8);
  EXPECT_EQ((10 + header_length) % 64, 0u);
  const std::string header(bytes.begin() + 10,
                           bytes.begin() + 10 + static_cast<long>(header_length));
  EXPECT_THAT(header, HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_length + 24);
}

TEST(Npy, WritesUnderATemporaryNameAndRenamesIntoPlace) {
  const fs::path folder = fs::temp_directory_path() / "cajal_npy_test";
  fs::remove_all(folder);
  fs::create_directories(folder);
  const std::vector<float> values{1.0f, 2.0f, 3.0f, 4.0f};
  write_npy(folder / "y.npy", {1, 4}, values);
  write_npy(folder / "y.npy", {2, 2}, values);  // replaces
  const auto array = read_npy(folder / "y.npy");
  EXPECT_EQ(array.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(array.data, values);
  EXPECT_EQ(std::distance(fs::directory_iterator(folder), fs::directory_iterator()), 1);
  EXPECT_THROW(write_npy(folder / "missing" / "y.npy", {1}, std::vector<float>{1.0f}), Error);
  EXPECT_FALSE(fs::exists(folder / "missing"));
  fs::remove_all(folder);
}

TEST(Npy, ReadsVersions2And3) {
  const std::vector<float> values{1.0f, 2.0f};
  for (const int major : {2, 3}) {
    const auto array = parse_npy(make_npy(f4_header("(2,)"), raw_bytes(values), major), "x");
    EXPECT_EQ(array.data, values) << "version " << major;
  }
}

TEST(Npy, ConvertsFloat64Int16AndUint8ToFloat32) {
  const auto f8 = parse_npy(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                                     raw_bytes(std::vector<double>{0.5, -1e10})),
                            "x");
  EXPECT_EQ(f8.data, (std::vector<float>{0.5f, -1e10f}));
  EXPECT_EQ(f8.source_dtype, "float64");
  const auto i2 = parse_npy(make_npy("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }",
                                     raw_bytes(std::vector<std::int16_t>{-1024, 0, 3071})),
                            "x");
  EXPECT_EQ(i2.data, (std::vector<float>{-1024.0f, 0.0f, 3071.0f}));
  EXPECT_EQ(i2.source_dtype, "int16");
  const auto u1 = parse_npy(make_npy("{'shape': (2, 1), 'fortran_order': False, 'descr': '|u1'}",
                                     std::vector<std::uint8_t>{0, 255}),
                            "x");
  EXPECT_EQ(u1.data, (std::vector<float>{0.0f, 255.0f}));
  EXPECT_EQ(u1.shape, (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(u1.source_dtype, "uint8");
}

const std::vector<std::uint8_t> kTwoFloats = raw_bytes(std::vector<float>{1.0f, 2.0f});

TEST(Npy, RejectsAFileWithoutTheMagic) {
  EXPECT_THAT(parse_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}),
              HasSubstr("x.npy: npy magic: expected the bytes \\x93NUMPY at the start"));
  EXPECT_THAT(parse_error({0x93, 'N', 'U'}), HasSubstr("npy magic"));
}

TEST(Npy, RejectsUnknownVersions) {
  auto bytes = make_npy(f4_header("(2,)"), kTwoFloats);
  bytes[6] = 4;
  EXPECT_THAT(parse_error(bytes), HasSubstr("npy version: expected 1.0, 2.0 or 3.0, got 4.0"));
  bytes[6] = 1;
  bytes[7] = 1;
  EXPECT_THAT(parse_error(bytes), HasSubstr("got 1.1"));
}

TEST(Npy, RejectsAHeaderLengthPastTheEndOfTheFile) {
  auto bytes = make_npy(f4_header("(2,)"), kTwoFloats);
  bytes[8] = 0xff;
  bytes[9] = 0xff;
  EXPECT_THAT(parse_error(bytes),
              HasSubstr("npy header length: expected at most the 126 bytes left in the file, "
                        "got 65535"));
  const std::vector<std::uint8_t> truncated{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 10, 0};
  EXPECT_THAT(parse_error(truncated), HasSubstr("npy header length: expected 4 bytes, got 2"));
}

TEST(Npy, RejectsOtherDtypes) {
  for (const char* descr : {">f4", "<i4", "<f2", "<c8", "O"}) {
    const auto bytes =
        make_npy("{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (2,), }",
                 kTwoFloats);
    EXPECT_THAT(parse_error(bytes),
                HasSubstr("npy dtype: expected one of '<f4', '<f8', '<i2', '|u1' (little-endian "
                          "float32, float64, int16, uint8), got '" +
                          std::string(descr) + "'"));
  }
}

TEST(Npy, RejectsFortranOrder) {
  const auto bytes =
      make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", kTwoFloats);
  EXPECT_THAT(parse_error(bytes),
              HasSubstr("npy fortran_order: expected False (C order), got True"));
  const auto odd = make_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", kTwoFloats);
  EXPECT_THAT(parse_error(odd), HasSubstr("npy fortran_order: expected False or True"));
}

TEST(Npy, RejectsMalformedShapes) {
  EXPECT_THAT(parse_error(make_npy(f4_header("(-2,)"), kTwoFloats)),
              HasSubstr("npy shape: expected a non-negative integer size, got '-2,)"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(2)"), kTwoFloats)),
              HasSubstr("npy shape: expected a one-element tuple written '(n,)', got '(2)'"));
  EXPECT_THAT(parse_error(make_npy(f4_header("[2]"), kTwoFloats)),
              HasSubstr("expected a shape tuple such as (1, 1, 96, 96, 96), got '[2]"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(2.0,)"), kTwoFloats)),
              HasSubstr("npy shape: expected ',' or ')' after a size, got '.0,)"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(99999999999999,)"), kTwoFloats)),
              HasSubstr("npy shape: expected sizes up to 1099511627776, got a larger one"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(2000000, 1000000, 1000000)"), kTwoFloats)),
              HasSubstr("npy shape: expected at most 2^60 elements"));
}

TEST(Npy, RejectsUnknownMissingAndRepeatedKeys) {
  EXPECT_THAT(parse_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                                   "'extra': 1}",
                                   kTwoFloats)),
              HasSubstr("npy header key: expected one of 'descr', 'fortran_order', 'shape', got "
                        "'extra'"));
  EXPECT_THAT(parse_error(make_npy("{'descr': '<f4', 'shape': (2,)}", kTwoFloats)),
              HasSubstr("npy header key 'fortran_order': expected present, got missing"));
  EXPECT_THAT(parse_error(make_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2,)}",
                                   kTwoFloats)),
              HasSubstr("npy header key 'descr': expected once, got a second time"));
}

TEST(Npy, RejectsAHeaderThatIsNotADict) {
  EXPECT_THAT(parse_error(make_npy("descr=<f4", kTwoFloats)),
              HasSubstr("npy header: expected the header dict's '{', got 'descr=<f4"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(2,)") + " junk", kTwoFloats)),
              HasSubstr("npy header: expected only spaces and a newline after the dict, got "
                        "'junk"));
  EXPECT_THAT(parse_error(make_npy("{'descr': '<f4", kTwoFloats, 1, true)),
              HasSubstr("npy header: expected a quoted dtype string closed by ', got the end of "
                        "the header"));
  EXPECT_THAT(parse_error(make_npy("{'descr': '<f4' 'shape': (2,)}", kTwoFloats)),
              HasSubstr("npy header: expected ',' or '}' after the value of 'descr'"));
}

TEST(Npy, RejectsDataOfAnotherLength) {
  auto short_data = kTwoFloats;
  short_data.pop_back();
  EXPECT_THAT(parse_error(make_npy(f4_header("(2,)"), short_data)),
              HasSubstr("npy data length: expected 8 bytes (shape (2,) of float32), got 7 bytes"));
  auto long_data = kTwoFloats;
  long_data.push_back(0);
  EXPECT_THAT(parse_error(make_npy(f4_header("(2,)"), long_data)),
              HasSubstr("npy data length: expected 8 bytes (shape (2,) of float32), got 9 bytes"));
  EXPECT_THAT(parse_error(make_npy(f4_header("(1, 2, 3)"), kTwoFloats)),
              HasSubstr("expected 24 bytes (shape (1, 2, 3) of float32), got 8 bytes"));
}

TEST(Npy, NamesAFileThatCannotBeOpened) {
  try {
    read_npy("/nonexistent/cajal/x.npy");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()),
                HasSubstr("input '/nonexistent/cajal/x.npy': expected a readable .npy file"));
  }
}

}  // namespace
}  // namespace cajal::io
