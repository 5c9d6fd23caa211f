#include "pipeline/phantom.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "io/dicom_writer.h"
#include "io/volume_io.h"
#include "pipeline/phantom_anatomy.h"
#include "pipeline/phantom_lesions.h"
#include "pipeline/phantom_random.h"
#include "pipeline/phantom_render.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

// Roles of the UIDs derived from a case seed.
enum UidRole : std::uint64_t { uid_study = 1, uid_series = 2, uid_frame = 3, uid_instances = 4 };

// Orientations a case picks from under "vary": all right-handed, so that a DICOM reader that
// orders slices along the normal gets the same array back. Axial ones are more common.
constexpr const char* varied_orientations[] = {"LPS", "LPS", "RAS", "RAS",
                                               "LAI", "RPI", "LIP", "RIA"};

std::string format_case_id(int index) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "case_%04d", index);
  return buffer;
}

double round_to(double value, double step) {
  return std::round(value / step) * step;
}

// The stored volume of a canonical (identity-direction) array in `orientation`.
template <typename T>
core::Volume reorient(const std::vector<T>& canonical, const core::Geometry& grid,
                      const std::string& orientation, core::PixelType pixel_type) {
  const core::Mat3 direction = direction_of_orientation(orientation);
  core::Geometry stored;
  stored.direction = direction;
  std::array<int, 3> axis{};  // canonical axis of stored axis m
  std::array<int, 3> sign{};
  for (int m = 0; m < 3; ++m) {
    for (int a = 0; a < 3; ++a) {
      if (direction[3 * a + m] != 0.0) {
        axis[m] = a;
        sign[m] = direction[3 * a + m] > 0 ? 1 : -1;
      }
    }
    stored.size[m] = grid.size[axis[m]];
    stored.spacing[m] = grid.spacing[axis[m]];
  }
  core::Vec3 first{};  // canonical index of stored voxel (0, 0, 0)
  const std::array<std::int64_t, 3> stride{1, stored.size[0], stored.size[0] * stored.size[1]};
  std::array<std::int64_t, 3> step{};  // stored offset per canonical step along axis a
  std::int64_t base = 0;
  for (int m = 0; m < 3; ++m) {
    const int a = axis[m];
    first[a] = sign[m] > 0 ? 0.0 : static_cast<double>(grid.size[a] - 1);
    step[a] = sign[m] * stride[m];
    base += sign[m] > 0 ? 0 : (grid.size[a] - 1) * stride[m];
  }
  stored.origin = grid.index_to_physical(first);
  core::Volume volume{stored, pixel_type, std::vector<float>(canonical.size())};
  std::size_t n = 0;
  for (std::int64_t z = 0; z < grid.size[2]; ++z) {
    for (std::int64_t y = 0; y < grid.size[1]; ++y) {
      std::int64_t offset = base + z * step[2] + y * step[1];
      for (std::int64_t x = 0; x < grid.size[0]; ++x, ++n, offset += step[0]) {
        volume.pixels[static_cast<std::size_t>(offset)] = static_cast<float>(canonical[n]);
      }
    }
  }
  return volume;
}

nlohmann::ordered_json labels_json(const PhantomCaseSpec& spec) {
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  nlohmann::ordered_json colors = nlohmann::ordered_json::object();
  labels["0"] = "background";
  for (const PhantomLabel& label : phantom_labels()) {
    labels[std::to_string(label.value)] = label.name;
    colors[std::to_string(label.value)] = label.color;
  }
  nlohmann::ordered_json phantom = {{"case_id", spec.case_id},
                                    {"index", spec.index},
                                    {"case_seed", spec.case_seed},
                                    {"orientation", spec.orientation},
                                    {"axial_size", spec.grid.size},
                                    {"axial_spacing", spec.grid.spacing},
                                    {"noise_sigma_hu", spec.noise_sigma},
                                    {"generator", std::string("cajal ") + cajal::version()}};
  return {{"labels", labels}, {"colors", colors}, {"phantom", phantom}};
}

nlohmann::ordered_json lesions_json(const PhantomCase& phantom) {
  nlohmann::ordered_json lesions = nlohmann::ordered_json::array();
  for (const PhantomLesion& lesion : phantom.lesions) {
    lesions.push_back({{"id", lesion.id},
                       {"label", lesion.label},
                       {"organ", lesion.organ},
                       {"organ_label", lesion.organ_label},
                       {"centre_mm", lesion.centre},
                       {"size_mm", lesion.size_mm},
                       {"semi_axes_mm", lesion.semi_axes},
                       {"hu", lesion.hu},
                       {"organ_hu", lesion.organ_hu},
                       {"margin", lesion.margin},
                       {"necrotic_core", lesion.necrotic_core},
                       {"oedema_mm", lesion.oedema_mm},
                       {"touches_organ_edge", lesion.touches_organ_edge},
                       {"voxels", lesion.voxels}});
  }
  return {{"case_id", phantom.spec.case_id},
          {"coordinates", "LPS"},
          {"classes", {"benign", "malignant"}},
          {"lesions", lesions}};
}

// The lesions as evaluate-classifier's TRUTH.csv: id (case/lesion_N) and label.
std::string lesions_csv(const PhantomCase& phantom) {
  std::string csv = "id,label\n";
  for (const PhantomLesion& lesion : phantom.lesions) {
    csv +=
        phantom.spec.case_id + "/lesion_" + std::to_string(lesion.id) + "," + lesion.label + "\n";
  }
  return csv;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    throw Error("file '" + path.string() + "'", "written", "a write error");
  }
}

io::DicomSeriesInfo dicom_info(const PhantomCaseSpec& spec) {
  io::DicomSeriesInfo info;
  info.patient_name = "PHANTOM^" + spec.case_id;
  info.patient_id = "PH" + std::to_string(spec.case_seed % 100000000) + "_" + spec.case_id;
  info.patient_sex = "O";
  info.study_uid = phantom_uid(spec.case_seed, uid_study);
  info.study_id = std::to_string(spec.index + 1);
  info.study_date = "20260101";
  info.study_time = "120000";
  info.study_description = "cajal phantom";
  info.series_uid = phantom_uid(spec.case_seed, uid_series);
  info.series_description = "synthetic CT " + spec.orientation;
  info.series_number = 1;
  info.frame_of_reference_uid = phantom_uid(spec.case_seed, uid_frame);
  info.sop_instance_uid_prefix = phantom_uid(spec.case_seed, uid_instances);
  info.body_part_examined = "CHEST";
  return info;
}

}  // namespace

const std::vector<PhantomLabel>& phantom_labels() {
  using namespace phantom;  // the label values
  static const std::vector<PhantomLabel> labels{{label_external, "External", {177, 122, 101}},
                                                {label_lung_l, "Lung_L", {111, 184, 210}},
                                                {label_lung_r, "Lung_R", {72, 137, 194}},
                                                {label_heart, "Heart", {206, 52, 52}},
                                                {label_liver, "Liver", {221, 130, 101}},
                                                {label_spleen, "Spleen", {157, 108, 162}},
                                                {label_kidney_l, "Kidney_L", {185, 102, 83}},
                                                {label_kidney_r, "Kidney_R", {230, 158, 90}},
                                                {label_esophagus, "Esophagus", {211, 171, 143}},
                                                {label_spinal_cord, "SpinalCord", {244, 214, 49}},
                                                {label_aorta, "Aorta", {224, 97, 76}}};
  return labels;
}

core::Mat3 direction_of_orientation(const std::string& code) {
  core::Mat3 direction{0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::array<bool, 3> used{false, false, false};
  const std::string letters = "LRPAIS";
  bool ok = code.size() == 3;
  for (std::size_t m = 0; ok && m < 3; ++m) {
    const std::size_t found =
        letters.find(static_cast<char>(std::toupper(static_cast<unsigned char>(code[m]))));
    if (found == std::string::npos) {
      ok = false;
      break;
    }
    const std::size_t a = found / 2;
    const double sign = found == 0 || found == 2 || found == 5 ? 1.0 : -1.0;  // L, P, S
    ok = !used[a];
    used[a] = true;
    direction[3 * a + m] = sign;
  }
  if (!ok) {
    throw Error("orientation", "three letters from L/R, P/A, S/I naming three different axes",
                "'" + code + "'");
  }
  return direction;
}

std::string phantom_uid(std::uint64_t case_seed, std::uint64_t role) {
  __extension__ typedef unsigned __int128 Uint128;
  const std::uint64_t key = phantom::hash_combine(case_seed, 0x5549440000000000ULL + role);
  Uint128 value =
      (static_cast<Uint128>(phantom::hash_combine(key, 1)) << 64) | phantom::hash_combine(key, 2);
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

PhantomCaseSpec make_phantom_case_spec(const PhantomOptions& options, int index) {
  for (int c = 0; c < 3; ++c) {
    if (options.size[c] < 8 || options.size[c] > 4096) {
      throw Error("phantom size", "8 to 4096 voxels along each axis",
                  std::to_string(options.size[c]));
    }
  }
  PhantomCaseSpec spec;
  spec.index = index;
  spec.case_id = format_case_id(index);
  spec.case_seed = phantom::hash_combine(options.seed, static_cast<std::uint64_t>(index));
  phantom::Rng rng(phantom::hash_combine(spec.case_seed, 0));
  const double in_plane = options.in_plane_spacing.value_or(round_to(rng.uniform(0.6, 1.0), 1e-4));
  constexpr double thicknesses[] = {1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0};
  const double thickness = options.slice_thickness.value_or(thicknesses[rng.below(8)]);
  if (!(in_plane > 0.0) || !(thickness > 0.0)) {
    throw Error("phantom spacing", "positive millimetres",
                std::to_string(in_plane) + " and " + std::to_string(thickness));
  }
  spec.orientation =
      options.orientation == "vary" ? varied_orientations[rng.below(8)] : options.orientation;
  for (char& letter : spec.orientation) {
    letter = static_cast<char>(std::toupper(static_cast<unsigned char>(letter)));
  }
  direction_of_orientation(spec.orientation);  // validates
  spec.noise_sigma = round_to(rng.uniform(10.0, 20.0), 0.01);
  spec.lesions = options.lesions;
  spec.grid.size = options.size;
  spec.grid.spacing = {in_plane, in_plane, thickness};
  const core::Vec3 centre{round_to(rng.uniform(-15.0, 15.0), 0.01),
                          round_to(rng.uniform(-30.0, 10.0), 0.01),
                          round_to(rng.uniform(-600.0, -100.0), 0.01)};
  for (int c = 0; c < 3; ++c) {
    spec.grid.origin[c] =
        centre[c] - 0.5 * static_cast<double>(spec.grid.size[c] - 1) * spec.grid.spacing[c];
  }
  return spec;
}

PhantomCase generate_phantom_case(const PhantomCaseSpec& spec, int threads) {
  phantom::Anatomy anatomy =
      phantom::make_anatomy(spec.grid, phantom::hash_combine(spec.case_seed, 1));
  std::vector<phantom::Lesion> lesions;
  if (spec.lesions) {
    lesions = phantom::add_lesions(anatomy, spec.grid, phantom::hash_combine(spec.case_seed, 3));
  }
  const phantom::Rendered rendered = phantom::render(
      anatomy, spec.grid, {spec.noise_sigma, phantom::hash_combine(spec.case_seed, 2), threads});
  PhantomCase result{spec,
                     reorient(rendered.hu, spec.grid, spec.orientation, core::PixelType::int16),
                     reorient(rendered.labels, spec.grid, spec.orientation, core::PixelType::uint8),
                     {},
                     std::nullopt};
  if (spec.lesions) {
    const std::vector<std::uint8_t> ids = phantom::rasterise_lesions(lesions, spec.grid);
    for (const phantom::Lesion& lesion : lesions) {
      result.lesions.push_back(
          {lesion.id, phantom::lesion_class_name(lesion.lesion_class), lesion.organ,
           lesion.organ_label, lesion.centre, lesion.semi_axes, lesion.size_mm, lesion.hu,
           lesion.organ_hu, lesion.margin, lesion.necrotic_core, lesion.oedema_mm,
           lesion.touches_organ_edge,
           std::count(ids.begin(), ids.end(), static_cast<std::uint8_t>(lesion.id))});
    }
    result.lesion_labels = reorient(ids, spec.grid, spec.orientation, core::PixelType::uint8);
  }
  return result;
}

void write_phantom_case(const PhantomCase& phantom, const PhantomOptions& options) {
  const fs::path folder = options.output / phantom.spec.case_id;
  const fs::path temporary = options.output / ("." + phantom.spec.case_id + ".cajal-tmp");
  std::error_code error;
  fs::remove_all(temporary, error);
  fs::create_directories(temporary, error);
  if (error) {
    throw Error("phantom output folder '" + temporary.string() + "'", "a folder that can be made",
                error.message());
  }
  try {
    if (options.write_nifti) {
      io::write_volume(phantom.ct, temporary / "ct.nii.gz");
    }
    io::write_volume(phantom.labels, temporary / "labels.nii.gz");
    std::ofstream json(temporary / "labels.json");
    json << labels_json(phantom.spec).dump(2) << "\n";
    json.close();
    if (!json) {
      throw Error("file '" + (temporary / "labels.json").string() + "'", "written",
                  "a write error");
    }
    if (phantom.lesion_labels) {
      io::write_volume(*phantom.lesion_labels, temporary / "lesions.nii.gz");
      write_text(temporary / "lesions.json", lesions_json(phantom).dump(2) + "\n");
      write_text(temporary / "lesions.csv", lesions_csv(phantom));
    }
    if (options.write_dicom) {
      io::write_dicom_series(phantom.ct, dicom_info(phantom.spec), temporary / "dicom");
    }
    fs::remove_all(folder);
    fs::rename(temporary, folder);
  } catch (...) {
    fs::remove_all(temporary, error);
    throw;
  }
}

std::vector<fs::path> run_phantom(const PhantomOptions& options) {
  if (options.count < 1) {
    throw Error("phantom --count", "at least 1", std::to_string(options.count));
  }
  if (options.orientation != "vary") {
    direction_of_orientation(options.orientation);
  }
  std::error_code error;
  fs::create_directories(options.output, error);
  if (error || !fs::is_directory(options.output)) {
    throw Error("phantom output '" + options.output.string() + "'", "a folder",
                error ? error.message() : "a file");
  }
  std::vector<fs::path> folders;
  for (int index = 0; index < options.count; ++index) {
    const auto start = std::chrono::steady_clock::now();
    const PhantomCaseSpec spec = make_phantom_case_spec(options, index);
    const PhantomCase phantom = generate_phantom_case(spec, options.threads);
    const auto generated = std::chrono::steady_clock::now();
    write_phantom_case(phantom, options);
    const auto written = std::chrono::steady_clock::now();
    const auto seconds = [](auto a, auto b) {
      return std::to_string(std::chrono::duration<double>(b - a).count()).substr(0, 5);
    };
    core::log_info(spec.case_id + ": " + core::to_string(spec.grid.spacing) + " mm, " +
                   spec.orientation + ", generated in " + seconds(start, generated) +
                   " s, written in " + seconds(generated, written) + " s");
    folders.push_back(options.output / spec.case_id);
  }
  return folders;
}

}  // namespace cajal::pipeline
