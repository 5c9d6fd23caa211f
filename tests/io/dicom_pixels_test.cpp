#include "io/dicom_pixels.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
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

}  // namespace
}  // namespace cajal::io::detail
