#include "pipeline/segment_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "pipeline/metrics.h"
#include "pipeline/sha256.h"

namespace cajal::pipeline {
namespace {

// Running sums of one structure, in double so that millions of voxels stay exact enough.
struct Accumulator {
  std::int64_t count = 0;
  core::Vec3 index_sum{};
  double sum = 0;
  double sum_squares = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  core::Index3 low{};
  core::Index3 high{};
};

// Voxels first..end - 1 of row (j, k), whose intensities are row[first..end - 1].
void add_run(Accumulator& acc, std::int64_t first, std::int64_t end, std::int64_t j, std::int64_t k,
             const float* row) {
  const core::Index3 low{first, j, k};
  const core::Index3 high{end - 1, j, k};
  if (acc.count == 0) {
    acc.low = low;
    acc.high = high;
  }
  const std::int64_t n = end - first;
  acc.count += n;
  acc.index_sum[0] += static_cast<double>((first + end - 1) * n / 2);
  acc.index_sum[1] += static_cast<double>(j * n);
  acc.index_sum[2] += static_cast<double>(k * n);
  for (int c = 0; c < 3; ++c) {
    acc.low[c] = std::min(acc.low[c], low[c]);
    acc.high[c] = std::max(acc.high[c], high[c]);
  }
  // Four lanes (every fourth voxel of the run) summed apart and added at the run's end: four
  // chains of additions instead of one, and vectorised. Whole-numbered intensities (CT in HU,
  // any integer pixel type) give exact sums in any order, so the same figures as one chain; other
  // values may differ in the last bits, the same on every run.
  std::array<double, 4> sum{};
  std::array<double, 4> squares{};
  std::array<double, 4> least{};
  std::array<double, 4> most{};
  least.fill(acc.min);
  most.fill(acc.max);
  std::int64_t i = first;
  for (; i + 4 <= end; i += 4) {
    for (std::size_t l = 0; l < 4; ++l) {
      const double value = row[i + static_cast<std::int64_t>(l)];
      sum[l] += value;
      squares[l] += value * value;
      least[l] = value < least[l] ? value : least[l];  // NaN is never taken, as with std::min
      most[l] = value > most[l] ? value : most[l];
    }
  }
  for (; i < end; ++i) {
    const double value = row[i];
    sum[0] += value;
    squares[0] += value * value;
    least[0] = value < least[0] ? value : least[0];
    most[0] = value > most[0] ? value : most[0];
  }
  acc.sum += (sum[0] + sum[1]) + (sum[2] + sum[3]);
  acc.sum_squares += (squares[0] + squares[1]) + (squares[2] + squares[3]);
  acc.min = std::min({least[0], least[1], least[2], least[3]});
  acc.max = std::max({most[0], most[1], most[2], most[3]});
}

core::Vec3 to_vec(const core::Index3& index) {
  return {static_cast<double>(index[0]), static_cast<double>(index[1]),
          static_cast<double>(index[2])};
}

void fill_stats(StructureStats& stats, const Accumulator& acc, const core::Geometry& grid) {
  const double n = static_cast<double>(acc.count);
  stats.voxel_count = acc.count;
  stats.volume_ml = n * grid.spacing[0] * grid.spacing[1] * grid.spacing[2] / 1000.0;
  stats.centroid_mm =
      grid.index_to_physical({acc.index_sum[0] / n, acc.index_sum[1] / n, acc.index_sum[2] / n});
  stats.bbox_min = acc.low;
  stats.bbox_max = acc.high;
  stats.bbox_min_mm = grid.index_to_physical(to_vec(acc.low));
  stats.bbox_max_mm = stats.bbox_min_mm;
  for (int corner = 1; corner < 8; ++corner) {
    core::Index3 index{};
    for (int c = 0; c < 3; ++c) {
      index[c] = (corner >> c) & 1 ? acc.high[c] : acc.low[c];
    }
    const core::Vec3 point = grid.index_to_physical(to_vec(index));
    for (int c = 0; c < 3; ++c) {
      stats.bbox_min_mm[c] = std::min(stats.bbox_min_mm[c], point[c]);
      stats.bbox_max_mm[c] = std::max(stats.bbox_max_mm[c], point[c]);
    }
  }
  stats.mean = acc.sum / n;
  stats.std = std::sqrt(std::max(0.0, acc.sum_squares / n - stats.mean * stats.mean));
  stats.min = acc.min;
  stats.max = acc.max;
  stats.touches_edge = false;
  for (int c = 0; c < 3; ++c) {
    stats.touches_edge = stats.touches_edge || acc.low[c] == 0 || acc.high[c] == grid.size[c] - 1;
  }
}

template <typename T>
void append_little_endian(Sha256& hash, const std::vector<float>& pixels) {
  constexpr std::size_t kChunk = std::size_t{1} << 16;
  std::vector<T> chunk(std::min(pixels.size(), kChunk));
  for (std::size_t start = 0; start < pixels.size(); start += kChunk) {
    const std::size_t n = std::min(pixels.size() - start, kChunk);
    // Indexed stores, not push_back: the conversion vectorises.
    for (std::size_t v = 0; v < n; ++v) {
      chunk[v] = static_cast<T>(pixels[start + v]);
    }
    // x86-64 and aarch64 Linux are little-endian, as the bytes are defined.
    hash.update(chunk.data(), n * sizeof(T));
  }
}

nlohmann::json vec_json(const core::Vec3& v) {
  return {v[0] + 0.0, v[1] + 0.0, v[2] + 0.0};
}

// Adding 0.0 turns -0.0 (which direction cosines print as otherwise) into 0.0.
std::vector<double> without_negative_zero(const core::Mat3& values) {
  std::vector<double> out;
  for (double value : values) {
    out.push_back(value + 0.0);
  }
  return out;
}

nlohmann::json index_json(const core::Index3& v) {
  return {v[0], v[1], v[2]};
}

}  // namespace

std::vector<StructureStats> measure_structures(const core::Volume& image,
                                               const core::Volume& labels,
                                               const std::vector<LabelName>& names) {
  check_same_grid(labels.geometry, image.geometry);
  // Accumulators by label value, a vector: label values are small integers.
  int top = 0;
  for (const LabelName& name : names) {
    top = std::max(top, name.label);
  }
  std::vector<Accumulator> accumulators(static_cast<std::size_t>(top) + 1);
  std::vector<bool> wanted(accumulators.size(), false);
  for (const LabelName& name : names) {
    if (name.label > 0) {
      wanted[static_cast<std::size_t>(name.label)] = true;
    }
  }
  const core::Index3& size = image.geometry.size;
  // Along each row, a run of one label at a time: its index sums and box from its ends (whole
  // numbers, exact in double as the voxel-by-voxel sums were), its intensities voxel by voxel in
  // raster order as before.
  for (std::int64_t k = 0; k < size[2]; ++k) {
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::size_t row = static_cast<std::size_t>(size[0] * (j + size[1] * k));
      const float* label_row = labels.pixels.data() + row;
      const float* image_row = image.pixels.data() + row;
      for (std::int64_t i = 0; i < size[0];) {
        const float value = label_row[i];
        std::int64_t end = i + 1;
        while (end < size[0] && label_row[end] == value) {
          ++end;
        }
        const int label = value > 0 ? static_cast<int>(value) : 0;
        if (label > 0 && label <= top && wanted[static_cast<std::size_t>(label)]) {
          add_run(accumulators[static_cast<std::size_t>(label)], i, end, j, k, image_row);
        }
        i = end;
      }
    }
  }
  std::vector<StructureStats> result;
  for (const LabelName& name : names) {
    StructureStats stats;
    stats.label = name.label;
    stats.name = name.name;
    if (name.label <= 0) {
      result.push_back(stats);
      continue;
    }
    const Accumulator& acc = accumulators[static_cast<std::size_t>(name.label)];
    if (acc.count > 0) {
      fill_stats(stats, acc, image.geometry);
    }
    result.push_back(stats);
  }
  return result;
}

std::string pixel_data_sha256(const core::Volume& volume) {
  Sha256 hash;
  switch (volume.pixel_type) {
    case core::PixelType::uint8:
      append_little_endian<std::uint8_t>(hash, volume.pixels);
      break;
    case core::PixelType::int8:
      append_little_endian<std::int8_t>(hash, volume.pixels);
      break;
    case core::PixelType::uint16:
      append_little_endian<std::uint16_t>(hash, volume.pixels);
      break;
    case core::PixelType::int16:
      append_little_endian<std::int16_t>(hash, volume.pixels);
      break;
    case core::PixelType::uint32:
      append_little_endian<std::uint32_t>(hash, volume.pixels);
      break;
    case core::PixelType::int32:
      append_little_endian<std::int32_t>(hash, volume.pixels);
      break;
    case core::PixelType::float32:
      append_little_endian<float>(hash, volume.pixels);
      break;
    case core::PixelType::float64:
      append_little_endian<double>(hash, volume.pixels);
      break;
  }
  return hash.hex_digest();
}

nlohmann::json to_json(const StructureStats& stats) {
  nlohmann::json out{{"label", stats.label},
                     {"name", stats.name},
                     {"empty", stats.voxel_count == 0},
                     {"voxel_count", stats.voxel_count},
                     {"volume_ml", stats.volume_ml}};
  if (stats.voxel_count == 0) {
    for (const char* key : {"centroid_mm", "bbox_index", "bbox_mm", "intensity", "touches_edge"}) {
      out[key] = nullptr;
    }
    return out;
  }
  out["centroid_mm"] = vec_json(stats.centroid_mm);
  out["bbox_index"] = {{"min", index_json(stats.bbox_min)}, {"max", index_json(stats.bbox_max)}};
  out["bbox_mm"] = {{"min", vec_json(stats.bbox_min_mm)}, {"max", vec_json(stats.bbox_max_mm)}};
  out["intensity"] = {
      {"mean", stats.mean}, {"std", stats.std}, {"min", stats.min}, {"max", stats.max}};
  out["touches_edge"] = stats.touches_edge;
  return out;
}

nlohmann::json to_json(const SegmentReport& report) {
  const core::Geometry& g = report.geometry;
  nlohmann::json input{
      {"path", report.input_path},
      {"kind", report.input_kind},
      {"size", index_json(g.size)},
      {"spacing", vec_json(g.spacing)},
      {"origin", vec_json(g.origin)},
      {"direction", without_negative_zero(g.direction)},
      {"orientation", core::orientation_code(g.direction)},
      {"pixel_type", core::to_string(report.pixel_type)},
      {"intensity_range", {report.intensity_range.min, report.intensity_range.max}},
      {"pixel_sha256", report.pixel_sha256},
      {"dicom", nullptr}};
  if (report.dicom) {
    const io::DicomSeriesAttributes& d = *report.dicom;
    input["dicom"] = {{"patient_id", d.patient_id},
                      {"patient_name", d.patient_name},
                      {"study_instance_uid", d.study_uid},
                      {"series_instance_uid", d.series_uid},
                      {"frame_of_reference_uid", d.frame_of_reference_uid},
                      {"modality", d.modality},
                      {"series_description", d.series_description},
                      {"series_number", d.series_number},
                      {"study_date", d.study_date},
                      {"sop_class_uid", d.sop_class_uid}};
  }
  nlohmann::json timings = nlohmann::json::object();
  double total = 0;
  for (const auto& [stage, seconds] : report.timings_seconds) {
    timings[stage] = seconds;
    total += seconds;
  }
  timings["total"] = total;
  nlohmann::json structures = nlohmann::json::array();
  for (const StructureStats& stats : report.structures) {
    structures.push_back(to_json(stats));
  }
  return {{"schema", kSegmentReportSchema},
          {"input", input},
          {"model",
           {{"path", report.model.path},
            {"name", report.model.name},
            {"version", report.model.version},
            {"weights_sha256", report.model.weights_sha256}}},
          {"cajal", {{"version", report.cajal_version}, {"threads", report.threads}}},
          {"timings_seconds", timings},
          {"preprocessing", report.preprocessing},
          {"inference", report.inference},
          {"postprocessing", report.postprocessing},
          {"dicom_export", report.dicom_export},
          {"warnings", report.warnings},
          {"outputs", report.outputs},
          {"structures", structures}};
}

}  // namespace cajal::pipeline
