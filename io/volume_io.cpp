#include "io/volume_io.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>

#include "core/error.h"
#include "io/dicom_header.h"
#include "io/dicom_series.h"
#include "io/itk_bridge.h"

namespace cajal::io {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 6> kReadableExtensions = {".nii.gz", ".nii", ".nrrd",
                                                            ".nhdr",   ".mha", ".mhd"};
// Formats that keep header and pixels in one file, so a rename moves the whole of it.
constexpr std::array<const char*, 4> kWritableExtensions = {".nii.gz", ".nii", ".nrrd", ".mha"};

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
  core::Volume volume = kind == InputKind::volume_file
                            ? detail::read_with_itk(path, detail::ReaderKind::by_extension)
                            : read_dicom_file(path);
  core::validate_geometry(volume.geometry, "'" + path.string() + "'");
  return volume;
}

bool is_writable_volume_path(const fs::path& path) {
  return !matching_extension(path, kWritableExtensions).empty();
}

void write_volume(const core::Volume& volume, const fs::path& path) {
  const std::string extension = matching_extension(path, kWritableExtensions);
  if (extension.empty()) {
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
  // The temporary name keeps the extension, which is how ITK picks the writer.
  static std::atomic<unsigned> counter{0};
  const std::string stem = path.filename().string();
  TemporaryFile temporary(folder /
                          ("." + stem.substr(0, stem.size() - extension.size()) + ".cajal-tmp-" +
                           std::to_string(getpid()) + "-" + std::to_string(counter++) + extension));
  detail::write_with_itk(volume, temporary.path());
  fs::rename(temporary.path(), path, error);
  if (error) {
    throw Error("output '" + path.string() + "'", "a file that can be replaced", error.message());
  }
  temporary.release();
}

}  // namespace cajal::io
