#include "io/dicom_pixels.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "io/itk_bridge.h"

namespace cajal::io::detail {
namespace {

namespace fs = std::filesystem;

struct Layout {
  Uint16 allocated;
  Uint16 stored;
  bool is_signed;
  double slope;
  double intercept;
  E_TransferSyntax syntax;
  std::string name;
};

constexpr long kRows = 3;
constexpr long kColumns = 5;

// A one-slice CT image whose raw values sweep the stored range and carry junk in the unused high
// bits, which readers must ignore.
fs::path write_slice(const Layout& layout, const fs::path& folder) {
  DcmFileFormat format;
  DcmDataset& d = *format.getDataset();
  char uid[100];
  d.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  d.putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid));
  d.putAndInsertString(DCM_StudyInstanceUID, dcmGenerateUniqueIdentifier(uid));
  d.putAndInsertString(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid));
  d.putAndInsertString(DCM_Modality, "CT");
  d.putAndInsertString(DCM_ImagePositionPatient, "0\\0\\0");
  d.putAndInsertString(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
  d.putAndInsertString(DCM_PixelSpacing, "1\\1");
  d.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  d.putAndInsertUint16(DCM_Rows, kRows);
  d.putAndInsertUint16(DCM_Columns, kColumns);
  d.putAndInsertUint16(DCM_BitsAllocated, layout.allocated);
  d.putAndInsertUint16(DCM_BitsStored, layout.stored);
  d.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(layout.stored - 1));
  d.putAndInsertUint16(DCM_PixelRepresentation, layout.is_signed ? 1 : 0);
  d.putAndInsertString(DCM_RescaleSlope, std::to_string(layout.slope).c_str());
  d.putAndInsertString(DCM_RescaleIntercept, std::to_string(layout.intercept).c_str());
  const unsigned span = 1u << layout.stored;
  const unsigned junk = layout.stored < layout.allocated ? (0xffffu << layout.stored) : 0u;
  std::vector<Uint16> wide;
  std::vector<Uint8> narrow;
  for (long i = 0; i < kRows * kColumns; ++i) {
    const unsigned raw =
        (static_cast<unsigned>(i) * (span - 1) / (kRows * kColumns - 1)) | (i % 2 == 0 ? junk : 0u);
    wide.push_back(static_cast<Uint16>(raw));
    narrow.push_back(static_cast<Uint8>(raw));
  }
  if (layout.allocated == 16) {
    d.putAndInsertUint16Array(DCM_PixelData, wide.data(), wide.size());
  } else {
    d.putAndInsertUint8Array(DCM_PixelData, narrow.data(), narrow.size());
  }
  const fs::path file = folder / (layout.name + ".dcm");
  EXPECT_TRUE(format.saveFile(file.c_str(), layout.syntax).good()) << file;
  return file;
}

class NativePixels : public ::testing::TestWithParam<Layout> {};

TEST_P(NativePixels, MatchGdcmDecodingOfTheSameFile) {
  const fs::path folder = fs::path(::testing::TempDir()) / "cajal_dicom_pixels";
  fs::create_directories(folder);
  const fs::path file = write_slice(GetParam(), folder);
  std::vector<float> fast(kRows * kColumns, -12345.0f);
  const std::optional<core::PixelType> type =
      read_native_pixels(file, kRows, kColumns, fast.data());
  ASSERT_TRUE(type.has_value()) << "the fast path declined " << file;
  const core::Volume twin = read_with_itk(file, ReaderKind::dicom);
  EXPECT_EQ(fast, twin.pixels);
  EXPECT_EQ(core::to_string(*type), core::to_string(twin.pixel_type));
  fs::remove(file);
}

INSTANTIATE_TEST_SUITE_P(
    BitLayouts, NativePixels,
    ::testing::Values(Layout{16, 16, true, 1, 0, EXS_LittleEndianExplicit, "s16"},
                      Layout{16, 16, false, 1, 0, EXS_LittleEndianExplicit, "u16"},
                      Layout{16, 12, false, 1, -1024, EXS_LittleEndianExplicit, "u12_ct"},
                      Layout{16, 12, true, 1, 0, EXS_LittleEndianImplicit, "s12_implicit"},
                      Layout{16, 16, true, 1, -1024, EXS_BigEndianExplicit, "s16_ct_big_endian"},
                      Layout{16, 16, false, 2, -1000, EXS_LittleEndianExplicit, "u16_slope2"},
                      Layout{16, 12, false, 0.5, 3, EXS_LittleEndianExplicit,
                             "u12_fractional_slope"},
                      Layout{8, 8, false, 1, 0, EXS_LittleEndianExplicit, "u8"},
                      Layout{8, 8, true, 1, 0, EXS_LittleEndianExplicit, "s8"}),
    [](const ::testing::TestParamInfo<Layout>& param_info) { return param_info.param.name; });

TEST(NativePixels, DeclinesCompressedAndMismatchedMatrix) {
  const fs::path folder = fs::path(::testing::TempDir()) / "cajal_dicom_pixels";
  fs::create_directories(folder);
  const fs::path file =
      write_slice({16, 16, true, 1, 0, EXS_LittleEndianExplicit, "matrix"}, folder);
  std::vector<float> buffer(64, 7.0f);
  EXPECT_FALSE(read_native_pixels(file, kRows + 1, kColumns, buffer.data()).has_value());
  EXPECT_EQ(buffer[0], 7.0f);
  fs::remove(file);
}

// The frame header of each codestream kind, and data that only happens to hold SIZ's bytes.
TEST(CodestreamFrame, ReadsTheFrameHeaderOfJpegJpegLsAndJpeg2000Only) {
  using Bytes = std::vector<unsigned char>;
  // JPEG: SOI, an APP0 of 4 bytes, SOF3 (lossless) of 300 rows x 200 columns, 1 component.
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC3, 0x00,
                      0x0B, 0x10, 0x01, 0x2C, 0x00, 0xC8, 0x01, 0x01, 0x11, 0x00};
  // JPEG-LS: SOI, SOF55 of 64 x 64, 1 component.
  const Bytes jpeg_ls = {0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x0B, 0x10, 0x00,
                         0x40, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00};
  // JPEG 2000: SOC, SIZ with Xsiz 520, Ysiz 300, XOsiz 8, YOsiz 0, Csiz 1.
  Bytes siz = {0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00, 0, 0, 0x02, 0x08,
               0,    0,    0x01, 0x2C, 0,    0,    0,    0x08, 0, 0, 0,    0};
  siz.resize(siz.size() + 16, 0);
  siz.insert(siz.end(), {0x00, 0x01, 0x07, 0x01, 0x01});
  Bytes jp2 = {0,    0,    0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A,
               0x87, 0x0A, 0, 0,  0,   8,   'j', 'p', '2',  'c'};
  jp2.insert(jp2.end(), siz.begin(), siz.end());
  // RLE: a 64-byte header, then segment bytes that happen to hold SOC and SIZ.
  Bytes rle(64, 0);
  rle[0] = 1;
  rle[4] = 64;
  rle.insert(rle.end(), siz.begin(), siz.end());

  const auto frame = [](const Bytes& bytes) {
    return codestream_frame(bytes.data(), bytes.size());
  };
  for (const auto& [bytes, rows, columns, codec] :
       {std::tuple{jpeg, 300L, 200L, "JPEG"}, std::tuple{jpeg_ls, 64L, 64L, "JPEG-LS"},
        std::tuple{siz, 300L, 512L, "JPEG 2000"}, std::tuple{jp2, 300L, 512L, "JPEG 2000"}}) {
    const std::optional<CodestreamFrame> found = frame(bytes);
    ASSERT_TRUE(found.has_value()) << codec;
    EXPECT_EQ(found->rows, rows) << codec;
    EXPECT_EQ(found->columns, columns) << codec;
    EXPECT_EQ(found->components, 1) << codec;
    EXPECT_EQ(std::string(found->codec), codec);
  }
  EXPECT_FALSE(frame(rle).has_value()) << "SIZ's bytes inside RLE data read as a frame header";
  EXPECT_FALSE(frame(Bytes(jpeg.begin(), jpeg.begin() + 12)).has_value()) << "cut before SOF";
  EXPECT_FALSE(frame(Bytes{}).has_value());
}

}  // namespace
}  // namespace cajal::io::detail
