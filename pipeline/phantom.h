// `cajal phantom`: synthetic CT studies of the torso with ground-truth organ labels, for
// training and benchmarking the segmentation pipeline. docs/phantom.md describes what is
// simulated, the HU table, the ranges cases vary over and the UID scheme.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.h"

namespace cajal::pipeline {

struct PhantomLabel {
  int value;
  std::string name;  // TG-263
  std::array<int, 3> color;
};

// The labels of labels.nii.gz, background (0) left out.
const std::vector<PhantomLabel>& phantom_labels();

struct PhantomOptions {
  std::filesystem::path output;
  int count = 1;
  std::uint64_t seed = 0;
  // Voxels left-right x anterior-posterior x superior-inferior (the axial grid, whatever the
  // stored orientation).
  core::Index3 size{512, 512, 300};
  // mm; when not set each case draws in-plane spacing from [0.6, 1.0] and slice thickness from
  // [1, 5].
  std::optional<double> in_plane_spacing;
  std::optional<double> slice_thickness;
  // A three-letter orientation code (nibabel's convention, e.g. "LPS", "RAS", "LIP"), or "vary":
  // each case picks one of the right-handed axial and coronal orientations.
  std::string orientation = "vary";
  bool write_nifti = true;  // ct.nii.gz; labels.nii.gz and labels.json are always written
  bool write_dicom = false;
  // Benign and malignant lesions in the liver, spleen, kidneys and lungs, with their ground truth
  // (lesions.nii.gz, lesions.json, lesions.csv). Off, the case is the same bytes as without it.
  bool lesions = false;
  int threads = 1;
};

// Everything that makes one case, drawn from (seed, index) alone: case i is the same whatever
// `count` is.
struct PhantomCaseSpec {
  std::string case_id;  // "case_0000"
  int index = 0;
  std::uint64_t case_seed = 0;
  core::Geometry grid;      // the axial rendering grid: identity direction
  std::string orientation;  // how the volumes are stored
  double noise_sigma = 15.0;
  bool lesions = false;
};

// The ground truth of one lesion (docs/phantom.md, "Lesions").
struct PhantomLesion {
  int id = 0;         // its value in lesions.nii.gz
  std::string label;  // "benign" or "malignant"
  std::string organ;  // TG-263 name, as in labels.json
  int organ_label = 0;
  core::Vec3 centre{0, 0, 0};     // mm, LPS
  core::Vec3 semi_axes{0, 0, 0};  // mm, of the ellipsoidal body
  double size_mm = 0;             // longest diameter of the body, 5 to 40 mm
  double hu = 0;                  // before noise and partial volume
  double organ_hu = 0;
  std::string margin;  // smooth, lobulated or spiculated
  bool necrotic_core = false;
  double oedema_mm = 0;
  bool touches_organ_edge = false;
  std::int64_t voxels = 0;  // in lesions.nii.gz
};

struct PhantomCase {
  PhantomCaseSpec spec;
  core::Volume ct;                            // int16 HU, stored in spec.orientation
  core::Volume labels;                        // uint8, same grid
  std::vector<PhantomLesion> lesions;         // with spec.lesions
  std::optional<core::Volume> lesion_labels;  // uint8 lesion ids, same grid; with spec.lesions
};

PhantomCaseSpec make_phantom_case_spec(const PhantomOptions& options, int index);
PhantomCase generate_phantom_case(const PhantomCaseSpec& spec, int threads = 1);

// Writes DIR/<case_id>/: ct.nii.gz, labels.nii.gz, labels.json, with write_dicom dicom/ and with
// lesions lesions.nii.gz, lesions.json and lesions.csv. The
// case is written in a temporary folder and renamed into place, replacing an older one.
void write_phantom_case(const PhantomCase& phantom, const PhantomOptions& options);

// Generates and writes options.count cases; returns their folders.
std::vector<std::filesystem::path> run_phantom(const PhantomOptions& options);

// The DICOM UID for `role` of a case: "2.25." followed by the decimal of a 128-bit hash of the
// case seed and the role.
std::string phantom_uid(std::uint64_t case_seed, std::uint64_t role);

// Direction matrix (columns = axes in LPS) of a three-letter orientation code; throws Error
// when the code does not name three different axes.
core::Mat3 direction_of_orientation(const std::string& code);

}  // namespace cajal::pipeline
