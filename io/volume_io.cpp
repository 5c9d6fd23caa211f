#include "io/volume_io.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <fstream>
#include <iterator>
#include <span>

#include "core/error.h"
#include "core/log.h"
#include "io/dicom_header.h"
#include "io/dicom_series.h"
#include "io/gzip.h"
#include "io/itk_bridge.h"
#include "io/metaimage_header.h"
#include "io/nifti_header.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 6> kReadableExtensions = {".nii.gz", ".nii", ".nrrd",
                                                            ".nhdr",   ".mha", ".mhd"};
constexpr std::array<const char*, 6> kWritableExtensions = {".nii.gz", ".nii", ".nrrd",
                                                            ".nhdr",   ".mha", ".mhd"};
// Formats whose header names a separate data file.
bool is_detached(const std::string& extension) {
  return extension == ".nhdr" || extension == ".mhd";
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The extension among `known` that the file name ends with, or "".
template <std::size_t N>
std::string matching_extension(const fs::path& path, const std::array<const char*, N>& known) {
  const std::string name = lower(path.filename().string());
  for (const char* extension : known) {
    const std::string ext = extension;
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      return ext;
    }
  }
  return {};
}

template <std::size_t N>
std::string join(const std::array<const char*, N>& items) {
  std::string text;
  for (const char* item : items) {
    text += (text.empty() ? "" : ", ") + std::string(item);
  }
  return text;
}

// Removes the temporary file unless released.
class TemporaryFile {
 public:
  explicit TemporaryFile(fs::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!released_) {
      std::error_code ignored;
      fs::remove(path_, ignored);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { released_ = true; }

 private:
  fs::path path_;
  bool released_ = false;
};

// Removes the temporary folder and whatever is left in it.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(fs::path path) : path_(std::move(path)) { fs::create_directory(path_); }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void rename_into_place(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (error) {
    throw Error("output '" + to.string() + "'", "a file that can be replaced", error.message());
  }
}

// The share of voxels equal to the one before from which a volume is compressed as runs.
constexpr double kRepeatShare = 0.9;

// ITK's .nii gzipped, without the uncompressed copy of the volume on disk: ITK writes the header
// for the first slice of the same grid into `scratch` (nothing in it but dim[3] depends on the
// slice count; tests/io compare the two ways), the slice count goes into that header, and the
// voxels follow, converted and compressed a block at a time: label maps and masks by the repeat
// coder (GzipWriter::repeats), other volumes by zlib at level 1, byte for byte as gzopen would
// write them (ITK 5.2 ignores the level asked and compresses at 6, about 5x slower on a noisy CT).
// Errors name `path`, the file the caller asked for.
void write_nifti_gz(const core::Volume& volume, const fs::path& target, const fs::path& scratch,
                    const fs::path& path) {
  const core::Geometry& grid = volume.geometry;
  CAJAL_CHECK(volume.pixels.size() == static_cast<std::size_t>(grid.voxel_count()))
      << "volume holds " << volume.pixels.size() << " pixels for a grid of " << grid.voxel_count();
  if (std::max({grid.size[0], grid.size[1], grid.size[2]}) > detail::kNifti1LargestSize) {
    throw Error("volume for '" + path.string() + "'",
                "at most " + std::to_string(detail::kNifti1LargestSize) +
                    " voxels along each axis (NIfTI-1)",
                std::to_string(grid.size[0]) + " x " + std::to_string(grid.size[1]) + " x " +
                    std::to_string(grid.size[2]));
  }
  const auto slice_voxels = static_cast<std::size_t>(grid.size[0] * grid.size[1]);
  core::Volume slice;
  slice.geometry = grid;
  slice.geometry.size[2] = 1;
  slice.pixel_type = volume.pixel_type;
  slice.pixels.assign(volume.pixels.begin(),
                      volume.pixels.begin() + static_cast<std::ptrdiff_t>(slice_voxels));
  detail::write_with_itk(slice, scratch, path);
  std::ifstream in(scratch, std::ios::binary);
  const std::string one_slice((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  const std::size_t pixel_bytes = detail::bytes_per_pixel(volume.pixel_type);
  const std::string header = detail::nifti1_header_of_slices(one_slice, grid.size[0], grid.size[1],
                                                             pixel_bytes, grid.size[2]);

  // Label maps and masks (runs of one value) go through the repeat coder, several times faster
  // than zlib and smaller; images (noise: few voxels equal the one before) through zlib.
  std::size_t repeats = 0;
  const std::vector<float>& pixels = volume.pixels;
  for (std::size_t v = 1; v < pixels.size(); ++v) {
    repeats += pixels[v] == pixels[v - 1] ? 1 : 0;
  }
  GzipWriter gzip =
      static_cast<double>(repeats) >= kRepeatShare * static_cast<double>(pixels.size())
          ? GzipWriter::repeats(target, static_cast<int>(pixel_bytes))
          : GzipWriter::zlib(target, 1);
  gzip.write({reinterpret_cast<const std::uint8_t*>(header.data()), header.size()});
  constexpr std::size_t kBlock = std::size_t{1} << 18;
  std::vector<std::uint8_t> block(kBlock * pixel_bytes);
  for (std::size_t begin = 0; begin < pixels.size(); begin += kBlock) {
    const std::size_t end = std::min(pixels.size(), begin + kBlock);
    detail::convert_pixels(volume, begin, end, block.data(), path);
    gzip.write({block.data(), (end - begin) * pixel_bytes});
  }
  gzip.finish();
}

// A header and its data file: both are written in a temporary folder under their final names,
// then the data file is renamed into place before the header, so a header that exists always
// names complete data.
void write_detached(const core::Volume& volume, const fs::path& path, const fs::path& staging) {
  TemporaryFolder temporary(staging);
  detail::write_with_itk(volume, temporary.path() / path.filename(), path);
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  for (const fs::directory_entry& entry : fs::directory_iterator(temporary.path())) {
    if (entry.path().filename() != path.filename()) {
      rename_into_place(entry.path(), folder / entry.path().filename());
    }
  }
  rename_into_place(temporary.path() / path.filename(), path);
}

// Where a NIfTI's sform is set, it places the image (as FSL, SPM, nibabel and MRIcron read it);
// ITK 5.2 takes the qform when both are set, so the sform is applied here.
void apply_nifti_sform(const fs::path& path, const std::optional<detail::NiftiSform>& sform,
                       core::Volume& volume) {
  if (!sform || sform->sform_code <= 0) {
    return;
  }
  if (!sform->geometry) {
    core::log_warning("'" + path.string() + "': the sform has non-orthogonal (sheared) axes; " +
                      "using the qform");
    return;
  }
  const core::Geometry& from_sform = *sform->geometry;
  core::Geometry placed = volume.geometry;
  placed.origin = from_sform.origin;
  placed.spacing = from_sform.spacing;
  placed.direction = from_sform.direction;
  if (!core::same_grid(volume.geometry, placed)) {
    core::log_warning("'" + path.string() + "': qform and sform disagree (qform origin " +
                      core::to_string(volume.geometry.origin) + ", sform origin " +
                      core::to_string(placed.origin) +
                      " mm LPS); using the sform, as FSL, SPM and nibabel do");
  }
  volume.geometry = placed;
}

// ITK's VNL aborts the process on a matrix with a NaN or an infinity, so a NIfTI header whose
// spacing, qform or sform holds one is refused before ITK reads it.
void check_nifti_numbers(const fs::path& path, const std::optional<detail::NiftiSform>& header) {
  if (!header || header->not_finite.empty()) {
    return;
  }
  std::string fields;
  for (const std::string& field : header->not_finite) {
    fields += (fields.empty() ? "" : ", ") + field;
  }
  throw Error("NIfTI header of '" + path.string() + "'",
              "finite numbers in pixdim, the qform and the sform",
              "a NaN or an infinity in " + fields);
}

}  // namespace

InputKind classify_input(const fs::path& path) {
  if (!fs::exists(path)) {
    throw Error("input", "an existing file or folder", "'" + path.string() + "' does not exist");
  }
  if (fs::is_directory(path)) {
    return InputKind::dicom_folder;
  }
  if (!matching_extension(path, kReadableExtensions).empty()) {
    return InputKind::volume_file;
  }
  if (detail::has_dicom_magic(path)) {
    return InputKind::dicom_file;
  }
  throw Error("input file '" + path.string() + "'",
              "a DICOM file or a volume (" + join(kReadableExtensions) + ")",
              "a file of another format");
}

std::string to_string(InputKind kind) {
  switch (kind) {
    case InputKind::dicom_folder:
      return "dicom_folder";
    case InputKind::dicom_file:
      return "dicom_file";
    case InputKind::volume_file:
      return "volume_file";
  }
  CAJAL_CHECK(false) << "unknown InputKind " << static_cast<int>(kind);
  return {};
}

core::Volume read_volume(const fs::path& path, const ReadOptions& options) {
  const InputKind kind = classify_input(path);
  if (kind == InputKind::dicom_folder) {
    const DicomFolder folder = scan_dicom_folder(path);
    warn_skipped(folder);
    return read_dicom_series(choose_series(folder, options.series_uid));
  }
  if (!options.series_uid.empty()) {
    throw Error("--series", "a DICOM folder as input", "the file '" + path.string() + "'");
  }
  // The NIfTI header is read once, before ITK (its numbers are checked) and applied after it.
  const std::string extension = matching_extension(path, kReadableExtensions);
  const std::optional<detail::NiftiSform> nifti =
      extension == ".nii" || extension == ".nii.gz" ? detail::read_nifti_sform(path) : std::nullopt;
  check_nifti_numbers(path, nifti);
  if (extension == ".mha" || extension == ".mhd") {
    detail::check_metaimage_header(path);
  }
  core::Volume volume = kind == InputKind::volume_file
                            ? detail::read_with_itk(path, detail::ReaderKind::by_extension)
                            : read_dicom_file(path);
  apply_nifti_sform(path, nifti, volume);
  core::validate_geometry(volume.geometry, "'" + path.string() + "'");
  return volume;
}

bool is_writable_volume_path(const fs::path& path) {
  return !matching_extension(path, kWritableExtensions).empty();
}

void validate_output_path(const fs::path& path) {
  if (matching_extension(path, kWritableExtensions).empty()) {
    throw Error("output '" + path.string() + "'",
                "a name ending in one of " + join(kWritableExtensions),
                "'" + path.filename().string() + "'");
  }
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(folder, error)) {
    throw Error("output folder of '" + path.string() + "'", "an existing folder",
                "'" + folder.string() + "' is not one");
  }
  if (fs::is_directory(path, error)) {
    throw Error("output '" + path.string() + "'", "a file name", "an existing folder");
  }
}

void write_volume(const core::Volume& volume, const fs::path& path) {
  validate_output_path(path);
  const std::string extension = matching_extension(path, kWritableExtensions);
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  static std::atomic<unsigned> counter{0};
  const std::string tag =
      ".cajal-tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  if (is_detached(extension)) {
    write_detached(volume, path, folder / tag);
    return;
  }
  // The temporary name keeps the extension, which is how ITK picks the writer.
  const std::string stem = path.filename().string();
  const std::string hidden = "." + stem.substr(0, stem.size() - extension.size()) + tag;
  TemporaryFile temporary(folder / (hidden + extension));
  if (extension == ".nii.gz") {
    TemporaryFile header(folder / (hidden + ".slice.nii"));
    write_nifti_gz(volume, temporary.path(), header.path(), path);
  } else {
    detail::write_with_itk(volume, temporary.path(), path);
  }
  rename_into_place(temporary.path(), path);
  temporary.release();
}

}  // namespace cajal::io
