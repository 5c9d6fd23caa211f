#include "io/dicom_pixels.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>

#include "core/error.h"

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

// Not inlined: inside read_native_pixels GCC leaves the loop scalar.
template <typename T>
__attribute__((noinline)) void decode(const T* raw, std::size_t count, unsigned bits_stored,
                                      bool is_signed, double slope, double intercept, float* dst) {
  // At most 16 stored bits (T is 8 or 16 bits wide): 32-bit integers hold every value, and a
  // signed one is sign-extended without a branch ((bits ^ sign) - sign), so the loop vectorises.
  static_assert(sizeof(T) <= 2);
  const std::int32_t mask = static_cast<std::int32_t>((1u << bits_stored) - 1u);
  const std::int32_t sign = is_signed ? std::int32_t{1} << (bits_stored - 1) : 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::int32_t value = ((static_cast<std::int32_t>(raw[i]) & mask) ^ sign) - sign;
    dst[i] = static_cast<float>(static_cast<double>(value) * slope + intercept);
  }
}

long big_endian(const unsigned char* p, int bytes) {
  long value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = value * 256 + p[i];
  }
  return value;
}

// Throws when the first fragment of encapsulated pixel data declares a frame other than
// rows x columns with one component.
void check_encapsulated_frame(DcmDataset& dataset, const std::filesystem::path& file, long rows,
                              long columns) {
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) {
    return;
  }
  auto* pixels = OFstatic_cast(DcmPixelData*, element);
  E_TransferSyntax syntax = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixels->getOriginalRepresentationKey(syntax, parameter);
  DcmPixelSequence* fragments = nullptr;
  DcmPixelItem* first = nullptr;
  Uint8* data = nullptr;
  if (pixels->getEncapsulatedRepresentation(syntax, parameter, fragments).bad() ||
      fragments == nullptr || fragments->card() < 2 || fragments->getItem(first, 1).bad() ||
      first == nullptr || first->getUint8Array(data).bad() || data == nullptr) {
    return;
  }
  const std::optional<CodestreamFrame> frame = codestream_frame(data, first->getLength());
  if (frame && (frame->rows != rows || frame->columns != columns || frame->components != 1)) {
    throw Error("pixel data of '" + file.string() + "'",
                std::to_string(columns) + " x " + std::to_string(rows) +
                    " pixels of 1 component, as Columns and Rows say",
                std::string(frame->codec) + " data of " + std::to_string(frame->columns) + " x " +
                    std::to_string(frame->rows) + " pixels of " +
                    std::to_string(frame->components) + " component(s)");
  }
}

}  // namespace

std::optional<CodestreamFrame> codestream_frame(const unsigned char* p, std::size_t n) {
  if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
    // JPEG and JPEG-LS: markers up to the frame header (SOFn, or SOF55 for JPEG-LS).
    std::size_t i = 2;
    while (i + 4 <= n) {
      if (p[i] != 0xFF) {
        return std::nullopt;
      }
      const unsigned char marker = p[i + 1];
      if (marker == 0xFF) {  // fill byte
        ++i;
        continue;
      }
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
        i += 2;
        continue;
      }
      const bool jpeg_sof =
          marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (jpeg_sof || marker == 0xF7) {
        if (i + 10 > n || big_endian(p + i + 5, 2) == 0) {
          return std::nullopt;  // cut short, or the height left to a DNL marker
        }
        // Lf (2), P (1), Y (2), X (2), Nf (1)
        return CodestreamFrame{big_endian(p + i + 5, 2), big_endian(p + i + 7, 2), p[i + 9],
                               marker == 0xF7 ? "JPEG-LS" : "JPEG"};
      }
      if (marker == 0xDA || marker == 0xD9) {  // scan or end before any frame header
        return std::nullopt;
      }
      i += 2 + static_cast<std::size_t>(big_endian(p + i + 2, 2));
    }
    return std::nullopt;
  }
  // JPEG 2000: the SIZ marker right after SOC, at the start of a bare codestream or inside a JP2
  // file's boxes (other data, RLE segments say, are not searched: four bytes could match).
  constexpr unsigned char kJp2Signature[] = {0, 0, 0, 12, 'j', 'P', ' ', ' '};
  const bool jp2 = n >= sizeof kJp2Signature &&
                   std::equal(std::begin(kJp2Signature), std::end(kJp2Signature), p);
  const std::size_t reach = std::min<std::size_t>(n, jp2 ? 4096 : 42);
  for (std::size_t i = 0; i + 42 <= reach; ++i) {
    if (p[i] == 0xFF && p[i + 1] == 0x4F && p[i + 2] == 0xFF && p[i + 3] == 0x51) {
      // Lsiz (2), Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz (4 each), tiles (16), Csiz (2)
      const unsigned char* siz = p + i + 4;
      return CodestreamFrame{big_endian(siz + 8, 4) - big_endian(siz + 16, 4),
                             big_endian(siz + 4, 4) - big_endian(siz + 12, 4),
                             big_endian(siz + 36, 2), "JPEG 2000"};
    }
  }
  return std::nullopt;
}

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
    check_encapsulated_frame(dataset, file, rows, columns);
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
