#include "io/itk_bridge.h"

#include <gdcmTrace.h>
#include <itkGDCMImageIO.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <type_traits>

#include "core/error.h"
#include "core/log.h"
#include "core/select.h"

namespace cajal::io::detail {
namespace {

using core::PixelType;

void set_up_itk() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::Object::GlobalWarningDisplayOff();
    // Registered here rather than through ITK_USE_FILE's generated manager, so the formats cajal
    // reads are named in one place.
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetError(false);
  });
}

std::string describe_component(itk::IOComponentEnum type) {
  return itk::ImageIOBase::GetComponentTypeAsString(type);
}

PixelType to_pixel_type(itk::IOComponentEnum type, const std::filesystem::path& path) {
  using C = itk::IOComponentEnum;
  switch (type) {
    case C::UCHAR:
      return PixelType::uint8;
    case C::CHAR:
      return PixelType::int8;
    case C::USHORT:
      return PixelType::uint16;
    case C::SHORT:
      return PixelType::int16;
    case C::UINT:
    case C::ULONG:
    case C::ULONGLONG:
      return PixelType::uint32;
    case C::INT:
    case C::LONG:
    case C::LONGLONG:
      return PixelType::int32;
    case C::FLOAT:
      return PixelType::float32;
    case C::DOUBLE:
      return PixelType::float64;
    default:
      throw Error("pixel type of '" + path.string() + "'", "an integer or floating-point scalar",
                  describe_component(type));
  }
}

// Reads into TPixel, then converts to float; for wide types, checks that nothing is lost.
template <typename TPixel>
core::Volume read_as(itk::ImageIOBase* io, const std::filesystem::path& path, PixelType type) {
  using Image = itk::Image<TPixel, 3>;
  auto reader = itk::ImageFileReader<Image>::New();
  reader->SetImageIO(io);
  reader->SetFileName(path.string());
  reader->Update();
  const Image* image = reader->GetOutput();
  core::Volume volume;
  volume.pixel_type = type;
  const auto size = image->GetLargestPossibleRegion().GetSize();
  for (unsigned d = 0; d < 3; ++d) {
    volume.geometry.size[d] = static_cast<std::int64_t>(size[d]);
    volume.geometry.spacing[d] = image->GetSpacing()[d];
    volume.geometry.origin[d] = image->GetOrigin()[d];
    for (unsigned c = 0; c < 3; ++c) {
      volume.geometry.direction[3 * d + c] = image->GetDirection()[d][c];
    }
  }
  const std::size_t count = image->GetLargestPossibleRegion().GetNumberOfPixels();
  const TPixel* buffer = image->GetBufferPointer();
  volume.pixels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    volume.pixels[i] = static_cast<float>(buffer[i]);
    if constexpr (std::is_same_v<TPixel, double>) {
      if (type != PixelType::float64 && static_cast<double>(volume.pixels[i]) != buffer[i]) {
        throw Error("pixel values of '" + path.string() + "'",
                    to_string(type) + " values that float32 holds exactly (|v| <= 2^24)",
                    "the value " + std::to_string(buffer[i]) + " at pixel " + std::to_string(i));
      }
    }
  }
  return volume;
}

// Pixels [begin, end) of `volume` cast to TPixel into `out`; throws Error naming the first value
// that does not fit.
template <typename TPixel>
void convert_as(const core::Volume& volume, std::size_t begin, std::size_t end, TPixel* out,
                const std::filesystem::path& path) {
  constexpr double lowest = static_cast<double>(std::numeric_limits<TPixel>::lowest());
  constexpr double highest = static_cast<double>(std::numeric_limits<TPixel>::max());
  // In range, a value is whole when truncating it changes nothing (cheaper than nearbyint).
  const auto fits = [](float value) {
    const bool inside = value >= lowest && value <= highest;  // NaN is not
    return inside && static_cast<float>(static_cast<TPixel>(inside ? value : 0.0f)) == value;
  };
  // A block at a time without a branch per value, so the compiler vectorises it: values that do
  // not fit are written as 0 and the block searched for the first of them afterwards.
  constexpr std::size_t kBlock = 4096;
  const float* pixels = volume.pixels.data();
  for (std::size_t start = begin; start < end; start += kBlock) {
    const std::size_t stop = std::min(end, start + kBlock);
    TPixel* target = out + (start - begin);
    if constexpr (std::is_integral_v<TPixel>) {
      using Bound = std::conditional_t<(sizeof(TPixel) <= 2), float, double>;
      std::uint32_t misfits = 0;
      for (std::size_t i = start; i < stop; ++i) {
        const float x = pixels[i];
        const bool inside = (static_cast<Bound>(x) >= static_cast<Bound>(lowest)) &
                            (static_cast<Bound>(x) <= static_cast<Bound>(highest));
        const auto value = static_cast<TPixel>(core::select_bits(inside, x, 0.0f));
        misfits |= static_cast<std::uint32_t>(!(inside & (static_cast<float>(value) == x)));
        target[i - start] = value;
      }
      if (misfits != 0) {
        const std::size_t i = static_cast<std::size_t>(
            std::find_if_not(pixels + start, pixels + stop, fits) - pixels);
        throw Error("pixel value at index " + std::to_string(i) + " of '" + path.string() + "'",
                    "an integer that fits " + to_string(volume.pixel_type),
                    std::to_string(pixels[i]));
      }
    } else {
      std::copy(pixels + start, pixels + stop, target);  // float: cast per value
    }
  }
}

template <typename TPixel>
void write_as(const core::Volume& volume, const std::filesystem::path& path,
              const std::filesystem::path& named) {
  using Image = itk::Image<TPixel, 3>;
  auto image = Image::New();
  typename Image::RegionType region;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType direction;
  for (unsigned d = 0; d < 3; ++d) {
    region.SetSize(d, static_cast<itk::SizeValueType>(volume.geometry.size[d]));
    spacing[d] = volume.geometry.spacing[d];
    origin[d] = volume.geometry.origin[d];
    for (unsigned c = 0; c < 3; ++c) {
      direction[d][c] = volume.geometry.direction[3 * d + c];
    }
  }
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  convert_as(volume, 0, volume.pixels.size(), image->GetBufferPointer(), named);
  auto writer = itk::ImageFileWriter<Image>::New();
  writer->SetFileName(path.string());
  writer->SetInput(image);
  writer->SetUseCompression(true);
  writer->Update();
}

}  // namespace

core::Volume read_with_itk(const std::filesystem::path& path, ReaderKind kind) {
  set_up_itk();
  const std::string name = path.string();
  try {
    itk::ImageIOBase::Pointer io;
    if (kind == ReaderKind::dicom) {
      io = itk::GDCMImageIO::New();
    } else {
      io = itk::ImageIOFactory::CreateImageIO(name.c_str(), itk::IOFileModeEnum::ReadMode);
      if (!io) {
        throw Error("file '" + name + "'", "a NIfTI, NRRD, MHA or DICOM image",
                    "a file no reader recognises");
      }
    }
    io->SetFileName(name);
    io->ReadImageInformation();
    const unsigned dimensions = io->GetNumberOfDimensions();
    for (unsigned d = 3; d < dimensions; ++d) {
      if (io->GetDimensions(d) > 1) {
        throw Error("image '" + name + "'", "a 3D volume",
                    std::to_string(dimensions) + " dimensions with " +
                        std::to_string(io->GetDimensions(d)) + " along dimension " +
                        std::to_string(d + 1));
      }
    }
    if (io->GetNumberOfComponents() != 1) {
      throw Error("image '" + name + "'", "one scalar per voxel",
                  std::to_string(io->GetNumberOfComponents()) + " components per voxel");
    }
    const PixelType type = to_pixel_type(io->GetComponentType(), path);
    if (core::is_exact_in_float(type)) {
      return read_as<float>(io, path, type);
    }
    core::Volume volume = read_as<double>(io, path, type);
    if (type == PixelType::float64) {
      volume.pixel_type = PixelType::float32;
      core::log_debug("'" + name + "' stores float64; cajal holds and writes it as float32");
    }
    return volume;
  } catch (const itk::ExceptionObject& e) {
    throw Error("reading '" + name + "'", "a readable image",
                std::string("ITK error: ") + e.GetDescription());
  }
}

namespace {

// `work` called with a value of the C++ type that stores `type`'s pixels.
template <typename Work>
decltype(auto) with_pixel_type(PixelType type, Work&& work) {
  switch (type) {
    case PixelType::uint8:
      return work(std::uint8_t{});
    case PixelType::int8:
      return work(std::int8_t{});
    case PixelType::uint16:
      return work(std::uint16_t{});
    case PixelType::int16:
      return work(std::int16_t{});
    case PixelType::uint32:
      return work(std::uint32_t{});
    case PixelType::int32:
      return work(std::int32_t{});
    case PixelType::float32:
      return work(float{});
    case PixelType::float64:
      break;
  }
  return work(double{});
}

}  // namespace

std::size_t bytes_per_pixel(PixelType type) {
  return with_pixel_type(type, [](auto pixel) { return sizeof pixel; });
}

void convert_pixels(const core::Volume& volume, std::size_t begin, std::size_t end, void* out,
                    const std::filesystem::path& path) {
  CAJAL_CHECK(begin <= end && end <= volume.pixels.size()) << "pixels out of range";
  with_pixel_type(volume.pixel_type, [&](auto pixel) {
    convert_as(volume, begin, end, static_cast<decltype(pixel)*>(out), path);
  });
}

void write_with_itk(const core::Volume& volume, const std::filesystem::path& path,
                    const std::filesystem::path& named) {
  set_up_itk();
  CAJAL_CHECK(volume.pixels.size() == static_cast<std::size_t>(volume.geometry.voxel_count()))
      << "volume holds " << volume.pixels.size() << " pixels for a grid of "
      << volume.geometry.voxel_count();
  try {
    with_pixel_type(volume.pixel_type,
                    [&](auto pixel) { write_as<decltype(pixel)>(volume, path, named); });
  } catch (const itk::ExceptionObject& e) {
    throw Error("writing '" + named.string() + "'", "a writable file",
                std::string("ITK error: ") + e.GetDescription());
  }
}

}  // namespace cajal::io::detail
