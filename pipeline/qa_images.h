// Quality-control pictures of a segmentation: slices through each structure with the contours of
// every label, and a montage. Radiological convention, square display pixels in mm; see
// docs/segment.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/volume.h"
#include "io/png_image.h"
#include "pipeline/segment_report.h"
#include "pipeline/structure_names.h"

namespace cajal::pipeline {

// Axial: viewed from the feet (patient's right on the picture's left, anterior up). Coronal:
// viewed from the front (right on the left, superior up). Sagittal: viewed from the patient's
// left (anterior on the left, superior up).
enum class QaView { axial, coronal, sagittal };
std::string to_string(QaView view);

// Grey levels: `low` maps to black, `high` to white.
struct QaWindow {
  double low = -160;  // soft tissue: level 40, width 400
  double high = 240;
};

// The plane of `view` through the physical point `through_mm` (LPS), sampled by nearest
// neighbour on square display pixels covering the whole volume, windowed grey (224 levels,
// round(223 t) for a value t of the way through the window, shown as round(255 level / 223))
// with a one-pixel contour of every label of `labels` (the colours of structure_color, names
// from `names`). Points outside the volume are black. A palette picture: the grey levels, then
// every colour of structure_colors().
io::IndexedImage render_qa_picture(const core::Volume& image, const core::Volume& labels,
                                   const std::vector<LabelName>& names, QaView view,
                                   const core::Vec3& through_mm, const QaWindow& window);
// The same picture as R G B.
io::RgbImage render_qa_slice(const core::Volume& image, const core::Volume& labels,
                             const std::vector<LabelName>& names, QaView view,
                             const core::Vec3& through_mm, const QaWindow& window);

// File-name stems for structures: the name with anything but letters, digits, '-' and '_'
// replaced by '_'; a stem that repeats gets "_<label>" appended.
std::vector<std::string> structure_file_stems(const std::vector<LabelName>& names);

// Writes into `qa_dir` (created when missing) <stem>_axial.png, <stem>_coronal.png and
// <stem>_sagittal.png through the centroid of each non-empty structure of `stats`, and
// montage.png: one row per non-empty structure (its colour, then the three views), or the three
// views through the volume's centre when every structure is empty. Returns the files written,
// relative to `qa_dir`.
std::vector<std::string> write_qa_images(const core::Volume& image, const core::Volume& labels,
                                         const std::vector<LabelName>& names,
                                         const std::vector<StructureStats>& stats,
                                         const QaWindow& window,
                                         const std::filesystem::path& qa_dir);

}  // namespace cajal::pipeline
