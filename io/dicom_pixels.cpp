#include "io/dicom_pixels.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace cajal::io::detail {
namespace {

using core::PixelType;

// The narrowest integer type holding [lo, hi], as GDCM's Rescaler chooses it, or float32.
PixelType rescaled_type(double lo, double hi, bool integral) {
  if (!integral) {
    return PixelType::float32;
  }
  constexpr std::array<std::pair<PixelType, std::array<double, 2>>, 6> kRanges = {{
      {PixelType::uint8, {0, 255}},
      {PixelType::int8, {-128, 127}},
      {PixelType::uint16, {0, 65535}},
      {PixelType::int16, {-32768, 32767}},
      {PixelType::uint32, {0, 4294967295.0}},
      {PixelType::int32, {-2147483648.0, 2147483647.0}},
  }};
  for (const auto& [type, range] : kRanges) {
    if (lo >= range[0] && hi <= range[1]) {
      return type;
    }
  }
  return PixelType::float32;
}

template <typename T>
void decode(const T* raw, std::size_t count, unsigned bits_stored, bool is_signed, double slope,
            double intercept, float* dst) {
  const std::uint32_t mask = bits_stored >= 32 ? 0xffffffffu : (1u << bits_stored) - 1u;
  const std::uint32_t sign_bit = 1u << (bits_stored - 1);
  const auto offset = static_cast<std::int64_t>(std::int64_t{1} << bits_stored);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t bits = static_cast<std::uint32_t>(raw[i]) & mask;
    std::int64_t value = bits;
    if (is_signed && (bits & sign_bit) != 0) {
      value -= offset;
    }
    dst[i] = static_cast<float>(static_cast<double>(value) * slope + intercept);
  }
}

}  // namespace

std::optional<PixelType> read_native_pixels(const std::filesystem::path& file, long rows,
                                            long columns, float* dst) {
  DcmFileFormat format;
  if (format.loadFile(file.c_str()).bad()) {
    return std::nullopt;  // GDCM then gives the error with its own words
  }
  DcmDataset& dataset = *format.getDataset();
  const E_TransferSyntax syntax = dataset.getOriginalXfer();
  if (syntax != EXS_LittleEndianImplicit && syntax != EXS_LittleEndianExplicit &&
      syntax != EXS_BigEndianExplicit) {
    return std::nullopt;
  }
  Uint16 samples = 1;
  Uint16 file_rows = 0;
  Uint16 file_columns = 0;
  Uint16 allocated = 0;
  Uint16 stored = 0;
  Uint16 high = 0;
  Uint16 representation = 0;
  OFString photometric;
  Sint32 frames = 1;
  dataset.findAndGetUint16(DCM_SamplesPerPixel, samples);
  dataset.findAndGetSint32(DCM_NumberOfFrames, frames);
  if (dataset.findAndGetUint16(DCM_Rows, file_rows).bad() ||
      dataset.findAndGetUint16(DCM_Columns, file_columns).bad() ||
      dataset.findAndGetUint16(DCM_BitsAllocated, allocated).bad() ||
      dataset.findAndGetUint16(DCM_BitsStored, stored).bad() ||
      dataset.findAndGetUint16(DCM_HighBit, high).bad() ||
      dataset.findAndGetUint16(DCM_PixelRepresentation, representation).bad() ||
      dataset.findAndGetOFString(DCM_PhotometricInterpretation, photometric).bad()) {
    return std::nullopt;
  }
  if (samples != 1 || frames > 1 || photometric != "MONOCHROME2" || file_rows != rows ||
      file_columns != columns || (allocated != 8 && allocated != 16) || stored == 0 ||
      stored > allocated || high + 1 != stored || representation > 1) {
    return std::nullopt;
  }
  Float64 slope = 1.0;
  Float64 intercept = 0.0;
  dataset.findAndGetFloat64(DCM_RescaleSlope, slope);
  dataset.findAndGetFloat64(DCM_RescaleIntercept, intercept);
  if (!std::isfinite(slope) || !std::isfinite(intercept) || slope == 0.0) {
    return std::nullopt;
  }
  const auto count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns);
  unsigned long available = 0;
  if (allocated == 16) {
    const Uint16* raw = nullptr;
    if (dataset.findAndGetUint16Array(DCM_PixelData, raw, &available).bad() || raw == nullptr ||
        available < count) {
      return std::nullopt;
    }
    decode(raw, count, stored, representation == 1, slope, intercept, dst);
  } else {
    const Uint8* raw = nullptr;
    if (dataset.findAndGetUint8Array(DCM_PixelData, raw, &available).bad() || raw == nullptr ||
        available < count) {
      return std::nullopt;
    }
    decode(raw, count, stored, representation == 1, slope, intercept, dst);
  }
  // The range of every value the stored bits could hold, rescaled, decides the type, as GDCM's
  // Rescaler does; read_dicom_series narrows it to the values actually present afterwards.
  const double lo = representation == 1 ? -std::ldexp(1.0, stored - 1) : 0.0;
  const double hi =
      representation == 1 ? std::ldexp(1.0, stored - 1) - 1 : std::ldexp(1.0, stored) - 1;
  const double a = lo * slope + intercept;
  const double b = hi * slope + intercept;
  const bool integral = slope == std::floor(slope) && intercept == std::floor(intercept);
  if (slope == 1.0 && intercept == 0.0) {
    // No rescale: GDCM keeps the stored type.
    return allocated == 8 ? (representation == 1 ? PixelType::int8 : PixelType::uint8)
                          : (representation == 1 ? PixelType::int16 : PixelType::uint16);
  }
  return rescaled_type(std::min(a, b), std::max(a, b), integral);
}

}  // namespace cajal::io::detail
