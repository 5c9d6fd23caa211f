#include "io/nifti_header.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"

namespace cajal::io::detail {
namespace {

constexpr std::size_t kNifti1Size = 348;
constexpr std::size_t kNifti2Size = 540;

template <typename T>
T read_field(const unsigned char* bytes, std::size_t offset, bool swap) {
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, bytes + offset, sizeof(T));
  if (swap) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) {
      std::swap(raw[i], raw[sizeof(T) - 1 - i]);
    }
  }
  T value;
  std::memcpy(&value, raw, sizeof(T));
  return value;
}

// Turns srow_x, srow_y, srow_z (RAS, mm) into LPS geometry, or nothing when the axes are not
// orthogonal (a sheared sform has no origin/spacing/direction form).
std::optional<core::Geometry> sform_to_geometry(const std::array<double, 12>& rows) {
  core::Geometry geometry;
  for (int c = 0; c < 3; ++c) {
    const double x = rows[c];
    const double y = rows[4 + c];
    const double z = rows[8 + c];
    const double length = std::sqrt(x * x + y * y + z * z);
    if (!(length > 0) || !std::isfinite(length)) {
      return std::nullopt;
    }
    geometry.spacing[c] = length;
    // RAS to LPS: negate x and y.
    geometry.direction[c] = -x / length;
    geometry.direction[3 + c] = -y / length;
    geometry.direction[6 + c] = z / length;
  }
  geometry.origin = {-rows[3], -rows[7], rows[11]};
  for (int a = 0; a < 3; ++a) {
    for (int b = a + 1; b < 3; ++b) {
      const core::Vec3 u = geometry.axis_direction(a);
      const core::Vec3 v = geometry.axis_direction(b);
      if (std::abs(u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) > 1e-4) {
        return std::nullopt;
      }
    }
  }
  return geometry;
}

}  // namespace

std::optional<NiftiSform> read_nifti_sform(const std::filesystem::path& path) {
  std::array<unsigned char, kNifti2Size> bytes{};
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return std::nullopt;
  }
  const int count = gzread(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
  if (count < static_cast<int>(kNifti1Size)) {
    return std::nullopt;
  }
  const auto size_native = read_field<std::int32_t>(bytes.data(), 0, false);
  const auto size_swapped = read_field<std::int32_t>(bytes.data(), 0, true);
  const bool swap = size_native != kNifti1Size && size_native != kNifti2Size;
  const std::int32_t header_size = swap ? size_swapped : size_native;
  NiftiSform sform;
  std::array<double, 12> rows{};
  std::array<double, 3> pixdim{};
  std::array<double, 6> quatern{};  // quatern_b, c, d, qoffset_x, y, z
  if (header_size == kNifti1Size) {
    sform.qform_code = read_field<std::int16_t>(bytes.data(), 252, swap);
    sform.sform_code = read_field<std::int16_t>(bytes.data(), 254, swap);
    for (std::size_t i = 0; i < 12; ++i) {
      rows[i] = read_field<float>(bytes.data(), 280 + 4 * i, swap);
    }
    for (std::size_t i = 0; i < 3; ++i) {
      pixdim[i] = read_field<float>(bytes.data(), 80 + 4 * i, swap);
    }
    for (std::size_t i = 0; i < 6; ++i) {
      quatern[i] = read_field<float>(bytes.data(), 256 + 4 * i, swap);
    }
  } else if (header_size == kNifti2Size && count == static_cast<int>(kNifti2Size)) {
    sform.qform_code = read_field<std::int32_t>(bytes.data(), 344, swap);
    sform.sform_code = read_field<std::int32_t>(bytes.data(), 348, swap);
    for (std::size_t i = 0; i < 12; ++i) {
      rows[i] = read_field<double>(bytes.data(), 400 + 8 * i, swap);
    }
    for (std::size_t i = 0; i < 3; ++i) {
      pixdim[i] = read_field<double>(bytes.data(), 112 + 8 * i, swap);
    }
    for (std::size_t i = 0; i < 6; ++i) {
      quatern[i] = read_field<double>(bytes.data(), 352 + 8 * i, swap);
    }
  } else {
    return std::nullopt;
  }
  const auto note = [&sform](const auto& values, bool used, const char* name) {
    if (used &&
        !std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); })) {
      sform.not_finite.emplace_back(name);
    }
  };
  note(pixdim, true, "pixdim[1..3]");
  note(quatern, sform.qform_code > 0, "the qform (quatern_b..qoffset_z)");
  note(rows, sform.sform_code > 0, "the sform (srow_x..srow_z)");
  if (sform.sform_code > 0) {
    sform.geometry = sform_to_geometry(rows);
  }
  return sform;
}

std::string nifti1_header_of_slices(const std::string& one_slice, std::int64_t size0,
                                    std::int64_t size1, std::size_t voxel_bytes,
                                    std::int64_t slices) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(one_slice.data());
  CAJAL_CHECK(one_slice.size() ==
                  kNifti1VoxelOffset + static_cast<std::size_t>(size0 * size1) * voxel_bytes &&
              read_field<std::int32_t>(bytes, 0, false) == static_cast<std::int32_t>(kNifti1Size) &&
              one_slice.compare(344, 4, std::string("n+1\0", 4)) == 0 &&
              read_field<float>(bytes, 108, false) == static_cast<float>(kNifti1VoxelOffset) &&
              read_field<std::int16_t>(bytes, 42, false) == size0 &&
              read_field<std::int16_t>(bytes, 44, false) == size1 &&
              read_field<std::int16_t>(bytes, 46, false) == 1)
      << "ITK's NIfTI-1 header for one slice is not the expected one";
  std::string header = one_slice.substr(0, kNifti1VoxelOffset);
  const auto count = static_cast<std::int16_t>(slices);
  std::memcpy(header.data() + 46, &count, sizeof count);  // dim[3]
  return header;
}

}  // namespace cajal::io::detail
