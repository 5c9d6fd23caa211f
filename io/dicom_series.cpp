#include "io/dicom_series.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "io/dicom_header.h"
#include "io/dicom_pixels.h"
#include "io/itk_bridge.h"
#include "io/slice_order.h"

namespace cajal::io {
namespace {

using detail::DicomHeader;
namespace fs = std::filesystem;

// Images of one series that share orientation, matrix and pixel spacing (to 1e-4).
bool same_plane(const DicomHeader& a, const DicomHeader& b) {
  if (a.rows != b.rows || a.columns != b.columns || !a.pixel_spacing != !b.pixel_spacing) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    if (std::abs((*a.orientation)[i] - (*b.orientation)[i]) > 1e-4) {
      return false;
    }
  }
  return !a.pixel_spacing || (std::abs((*a.pixel_spacing)[0] - (*b.pixel_spacing)[0]) < 1e-4 &&
                              std::abs((*a.pixel_spacing)[1] - (*b.pixel_spacing)[1]) < 1e-4);
}

bool is_localizer(const DicomHeader& header) {
  return header.image_type.find("LOCALIZER") != std::string::npos;
}

// Builds a series from the image headers sharing one SeriesInstanceUID; returns nothing when
// every image is left out (a localizer series).
std::optional<DicomSeries> build_series(const std::vector<DicomHeader>& headers,
                                        std::vector<std::string>& skipped) {
  std::vector<const DicomHeader*> candidates;
  std::vector<std::string> left_out;
  for (const DicomHeader& header : headers) {
    if (is_localizer(header)) {
      left_out.push_back(header.file.string() + ": localizer (ImageType " + header.image_type +
                         ")");
    } else {
      candidates.push_back(&header);
    }
  }
  if (candidates.empty()) {
    skipped.insert(skipped.end(), left_out.begin(), left_out.end());
    return std::nullopt;
  }
  // The plane shared by most images defines the series; the others are left out.
  const DicomHeader* reference = candidates.front();
  std::size_t best = 0;
  for (const DicomHeader* candidate : candidates) {
    const auto count = static_cast<std::size_t>(
        std::count_if(candidates.begin(), candidates.end(),
                      [&](const DicomHeader* other) { return same_plane(*candidate, *other); }));
    if (count > best) {
      best = count;
      reference = candidate;
    }
  }
  std::vector<const DicomHeader*> slices;
  for (const DicomHeader* candidate : candidates) {
    if (same_plane(*reference, *candidate)) {
      slices.push_back(candidate);
    } else {
      left_out.push_back(candidate->file.string() +
                         ": orientation, matrix or pixel spacing differs from the series'");
    }
  }

  DicomSeries series;
  static_cast<DicomSeriesAttributes&>(series) = *reference;
  series.left_out = std::move(left_out);

  std::vector<detail::SliceInput> inputs;
  for (const DicomHeader* slice : slices) {
    inputs.push_back({*slice->position, slice->sop_instance_uid});
  }
  detail::PlaneInput plane;
  plane.orientation = *reference->orientation;
  plane.pixel_spacing = reference->pixel_spacing.value_or(std::array<double, 2>{1.0, 1.0});
  plane.rows = reference->rows;
  plane.columns = reference->columns;
  plane.single_slice_spacing =
      reference->spacing_between_slices.value_or(reference->slice_thickness.value_or(1.0));
  if (!(plane.single_slice_spacing > 0)) {
    plane.single_slice_spacing = 1.0;
  }
  detail::SliceLayout layout = detail::order_slices(inputs, plane);
  series.geometry = layout.geometry;
  series.problem = layout.problem;
  if (!reference->pixel_spacing && series.problem.empty()) {
    series.problem = "no PixelSpacing: the physical size of the pixels is unknown";
  }
  for (std::size_t index : layout.order) {
    series.files.push_back(slices[index]->file);
    series.sop_instance_uids.push_back(slices[index]->sop_instance_uid);
  }
  return series;
}

std::string describe(const DicomSeries& series) {
  return series.series_uid + " (" + (series.modality.empty() ? "?" : series.modality) + ", '" +
         series.series_description + "', " + std::to_string(series.files.size()) + " images)";
}

std::vector<fs::path> list_files(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, error);
  if (error) {
    throw Error("folder '" + folder.string() + "'", "a readable folder", error.message());
  }
  for (const fs::directory_entry& entry : it) {
    if (entry.is_regular_file(error)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// GDCM widens the rescaled type from the stored bits (16-bit unsigned with an intercept of -1024
// becomes int32); CT in HU is int16 by convention, so take the narrowest 16-bit type that holds
// every value.
core::PixelType narrowest_rescaled_type(core::PixelType type, const core::IntensityRange& range) {
  if (type != core::PixelType::int32 && type != core::PixelType::uint32) {
    return type;
  }
  if (range.min >= -32768 && range.max <= 32767) {
    return core::PixelType::int16;
  }
  if (range.min >= 0 && range.max <= 65535) {
    return core::PixelType::uint16;
  }
  return type;
}

// Logs each note, or the first ten and a count, so a folder of many stray files stays readable.
void warn_each(const std::string& prefix, const std::vector<std::string>& notes) {
  constexpr std::size_t kShown = 10;
  for (std::size_t i = 0; i < notes.size() && i < kShown; ++i) {
    core::log_warning(prefix + notes[i]);
  }
  if (notes.size() > kShown) {
    core::log_warning(prefix + "... and " + std::to_string(notes.size() - kShown) + " more");
  }
}

}  // namespace

DicomFolder scan_dicom_folder(const fs::path& folder) {
  if (!fs::exists(folder)) {
    throw Error("input", "an existing file or folder", "'" + folder.string() + "' does not exist");
  }
  if (!fs::is_directory(folder)) {
    throw Error("DICOM input '" + folder.string() + "'", "a folder", "a file");
  }
  const std::vector<fs::path> files = list_files(folder);
  if (files.empty()) {
    throw Error("DICOM folder '" + folder.string() + "'", "DICOM image files", "an empty folder");
  }
  DicomFolder result;
  std::map<std::string, std::vector<DicomHeader>> by_series;
  for (const fs::path& file : files) {
    std::optional<DicomHeader> header;
    try {
      header = detail::read_dicom_header(file);
    } catch (const Error& e) {
      result.skipped.push_back(file.string() + ": " + e.what());
      continue;
    }
    if (!header) {
      result.skipped.push_back(file.string() + ": not a DICOM file");
      continue;
    }
    const std::string reason = detail::why_not_an_image_slice(*header);
    if (!reason.empty()) {
      result.skipped.push_back(file.string() + ": " + reason);
      continue;
    }
    by_series[header->series_uid].push_back(std::move(*header));
  }
  for (const auto& [uid, headers] : by_series) {
    if (std::optional<DicomSeries> series = build_series(headers, result.skipped)) {
      result.series.push_back(std::move(*series));
    }
  }
  if (result.series.empty()) {
    std::string reasons;
    for (std::size_t i = 0; i < result.skipped.size() && i < 3; ++i) {
      reasons += "; " + result.skipped[i];
    }
    throw Error("DICOM folder '" + folder.string() + "'", "at least one image series",
                "none among " + std::to_string(files.size()) + " files" + reasons);
  }
  std::sort(result.series.begin(), result.series.end(),
            [](const DicomSeries& a, const DicomSeries& b) {
              const long na = std::atol(a.series_number.c_str());
              const long nb = std::atol(b.series_number.c_str());
              return na != nb ? na < nb : a.series_uid < b.series_uid;
            });
  return result;
}

const DicomSeries& choose_series(const DicomFolder& folder, const std::string& series_uid) {
  std::string listing;
  for (const DicomSeries& series : folder.series) {
    if (!series_uid.empty() && series.series_uid == series_uid) {
      return series;
    }
    listing += (listing.empty() ? "" : "; ") + describe(series);
  }
  if (!series_uid.empty()) {
    throw Error("series " + series_uid, "one of the series in the folder: " + listing,
                "no such series");
  }
  if (folder.series.size() == 1) {
    return folder.series.front();
  }
  throw Error("DICOM folder", "one image series, or --series UID to choose one",
              std::to_string(folder.series.size()) + " series: " + listing);
}

void warn_skipped(const DicomFolder& folder) {
  warn_each("skipped ", folder.skipped);
}

core::Volume read_dicom_series(const DicomSeries& series, core::IntensityRange* range) {
  if (!series.problem.empty()) {
    throw Error("DICOM series " + series.series_uid, "slices on a regular grid", series.problem);
  }
  warn_each("left out of series " + series.series_uid + ": ", series.left_out);
  core::Volume volume;
  volume.geometry = series.geometry;
  core::validate_geometry(volume.geometry, "DICOM series " + series.series_uid);
  const std::size_t slice_pixels =
      static_cast<std::size_t>(volume.geometry.size[0] * volume.geometry.size[1]);
  volume.pixels.resize(slice_pixels * series.files.size());
  // Uncompressed slices are read by DCMTK on the context's threads (each file into its own
  // plane, DCMTK's dictionary is locked); the rest, and any error, in slice order afterwards.
  const auto slices = static_cast<std::int64_t>(series.files.size());
  std::vector<std::optional<core::PixelType>> natives(series.files.size());
  std::vector<std::exception_ptr> errors(series.files.size());
  // Each slice's range while its pixels are still in the cache: no pass over the whole volume.
  std::vector<core::IntensityRange> ranges(series.files.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t k = 0; k < slices; ++k) {
    const auto s = static_cast<std::size_t>(k);
    try {
      float* slice = volume.pixels.data() + s * slice_pixels;
      natives[s] = detail::read_native_pixels(series.files[s], volume.geometry.size[1],
                                              volume.geometry.size[0], slice);
      if (natives[s]) {
        ranges[s] = core::intensity_range(slice, slice_pixels);
      }
    } catch (...) {
      errors[s] = std::current_exception();
    }
  }
  for (std::size_t k = 0; k < series.files.size(); ++k) {
    if (errors[k]) {
      std::rethrow_exception(errors[k]);
    }
    float* destination = volume.pixels.data() + k * slice_pixels;
    const std::optional<core::PixelType>& native = natives[k];
    if (native) {
      // Slices whose rescale gives different pixel types are held and written as float32.
      volume.pixel_type =
          k == 0 || *native == volume.pixel_type ? *native : core::PixelType::float32;
      continue;
    }
    core::Volume slice = detail::read_with_itk(series.files[k], detail::ReaderKind::dicom);
    if (slice.geometry.size != core::Index3{volume.geometry.size[0], volume.geometry.size[1], 1}) {
      throw Error("pixel data of '" + series.files[k].string() + "'",
                  std::to_string(volume.geometry.size[0]) + "x" +
                      std::to_string(volume.geometry.size[1]) + " pixels",
                  std::to_string(slice.geometry.size[0]) + "x" +
                      std::to_string(slice.geometry.size[1]) + "x" +
                      std::to_string(slice.geometry.size[2]));
    }
    volume.pixel_type = k == 0 || slice.pixel_type == volume.pixel_type ? slice.pixel_type
                                                                        : core::PixelType::float32;
    std::copy(slice.pixels.begin(), slice.pixels.end(), destination);
    ranges[k] = core::intensity_range(slice);
  }
  core::IntensityRange whole = ranges.empty() ? core::IntensityRange{} : ranges.front();
  for (const core::IntensityRange& r : ranges) {
    whole.min = r.min < whole.min ? r.min : whole.min;
    whole.max = whole.max < r.max ? r.max : whole.max;
  }
  volume.pixel_type = narrowest_rescaled_type(volume.pixel_type, whole);
  if (range != nullptr) {
    *range = whole;
  }
  return volume;
}

core::Volume read_dicom_file(const fs::path& file) {
  std::optional<DicomHeader> header = detail::read_dicom_header(file);
  if (!header) {
    throw Error("file '" + file.string() + "'", "a DICOM file", "no DICOM dataset");
  }
  const std::string reason = detail::why_not_an_image_slice(*header);
  if (!reason.empty()) {
    throw Error("DICOM file '" + file.string() + "'", "an image", reason);
  }
  std::vector<std::string> skipped;
  std::optional<DicomSeries> series = build_series({*header}, skipped);
  if (!series) {
    throw Error("DICOM file '" + file.string() + "'", "an image", skipped.front());
  }
  return read_dicom_series(*series);
}

}  // namespace cajal::io
