#include "pipeline/segment.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "io/volume_io.h"
#include "pipeline/case_input.h"
#include "pipeline/dicom_export.h"
#include "pipeline/held_pixels.h"
#include "pipeline/postprocess.h"
#include "pipeline/preprocess.h"
#include "pipeline/qa_images.h"
#include "pipeline/sha256.h"

namespace cajal::pipeline {
namespace {

namespace fs = std::filesystem;

// What the process holds besides the volumes --memory-limit counts: code, libraries, the model's
// weights, oneDNN's own buffers (bench/segment/run.sh: about 145 MiB resident when the network
// starts, and a peak 40 MB above the plan made with 160 MiB here).
constexpr std::int64_t kProgramBytes = std::int64_t{200} << 20;

void warn(SegmentReport& report, const std::string& message) {
  core::log_warning(message);
  report.warnings.push_back(message);
}

std::optional<io::DicomSeries> reference_series(const ReadInput& input,
                                                const SegmentOptions& options) {
  if (!options.rtstruct && !options.dicom_seg) {
    return std::nullopt;
  }
  if (input.series) {
    return input.series;
  }
  if (options.reference_dicom.empty()) {
    throw Error("--rtstruct / --dicom-seg", "a DICOM series input or --reference-dicom DIR",
                "a non-DICOM input without --reference-dicom");
  }
  const io::DicomFolder folder = io::scan_dicom_folder(options.reference_dicom);
  io::warn_skipped(folder);
  return io::choose_series(folder, options.series_uid);
}

QaWindow qa_window(const models::RunConfig& run, const core::Volume& image) {
  const models::Normalization& norm = run.normalization;
  if (norm.kind == "ct") {
    return norm.clip_max > norm.clip_min ? QaWindow{norm.clip_min, norm.clip_max} : QaWindow{};
  }
  // Other models: the image's 1st to 99th percentile.
  std::vector<float> values = image.pixels;
  const auto nth = [&values](double q) {
    const auto n = static_cast<std::ptrdiff_t>(q * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + n, values.end());
    return static_cast<double>(values[static_cast<std::size_t>(n)]);
  };
  const double low = nth(0.01);
  const double high = nth(0.99);
  return high > low ? QaWindow{low, high} : QaWindow{low, low + 1};
}

// `work` on a second thread when `parallel`, else done now; await_work() waits for it and passes on
// its exception. The second thread's OpenMP regions (the page pool's prefault) take the caller's
// thread count, not OpenMP's default of every core.
template <typename Work>
std::future<void> begin_work(bool parallel, Work work) {
  if (parallel) {
    return std::async(std::launch::async,
                      [threads = omp_get_max_threads(), work = std::move(work)]() mutable {
                        omp_set_num_threads(threads);
                        work();
                      });
  }
  work();
  return {};
}

void await_work(std::future<void>& started) {
  if (started.valid()) {
    started.get();
  }
}

void write_masks(const core::Volume& labels, const std::vector<LabelName>& names,
                 const fs::path& case_dir, SegmentReport& report) {
  fs::create_directories(case_dir / "masks");
  const std::vector<std::string> stems = structure_file_stems(names);
  core::Volume mask = core::make_volume(labels.geometry, core::PixelType::uint8);
  for (std::size_t s = 0; s < names.size(); ++s) {
    const auto value = static_cast<float>(names[s].label);
    for (std::size_t v = 0; v < mask.pixels.size(); ++v) {
      mask.pixels[v] = labels.pixels[v] == value ? 1.0f : 0.0f;
    }
    const std::string file = "masks/" + stems[s] + ".nii.gz";
    io::write_volume(mask, case_dir / file);
    report.outputs.push_back(file);
  }
}

void export_dicom(const core::Volume& labels, const std::vector<LabelName>& names,
                  const io::DicomSeries& series, const SegmentOptions& options,
                  const SegmentModel& model, const fs::path& case_dir, SegmentReport& report) {
  std::vector<LabelName> present;
  for (const StructureStats& stats : report.structures) {
    if (stats.voxel_count > 0) {
      present.push_back({stats.label, stats.name});
    }
  }
  if (present.empty()) {
    warn(report, "every structure is empty: no RTSTRUCT or SEG written");
    return;
  }
  DicomExportOptions export_options;
  if (options.rtstruct) {
    export_options.rtstruct_path = case_dir / "rtstruct.dcm";
  }
  if (options.dicom_seg) {
    export_options.seg_path = case_dir / "seg.dcm";
  }
  export_options.info.software_version = std::string("cajal ") + version();
  export_options.info.series_description = "cajal segment " + model.provenance.name;
  DicomExportReport exported = export_labels_to_dicom(labels, names, series, export_options);
  // Paths relative to the case folder: the folder they were written in is renamed afterwards.
  for (std::optional<fs::path>* path : {&exported.rtstruct_path, &exported.seg_path}) {
    if (*path) {
      *path = (*path)->filename();
    }
  }
  report.dicom_export = to_json(exported);
  for (const LabelName& empty : exported.empty) {
    report.warnings.push_back("structure '" + empty.name + "' (label " +
                              std::to_string(empty.label) +
                              ") is empty: left out of the RTSTRUCT and SEG");
  }
  for (const char* file : {"rtstruct.dcm", "seg.dcm"}) {
    if (fs::exists(case_dir / file)) {
      report.outputs.push_back(file);
    }
  }
}

}  // namespace

SegmentModel load_segment_model(const fs::path& requested_dir, int threads) {
  const fs::path model_dir =
      requested_dir.empty() ? find_bundled_model(kBundledSegmentModel, "CT model") : requested_dir;
  models::Model model = models::Model::load(model_dir);
  const models::RunConfig& run = model.spec().run;
  if (run.task != "segmentation" || run.spatial_dims != 3) {
    throw Error("model '" + model_dir.string() + "'", "a 3D segmentation model",
                "task " + run.task + ", " + std::to_string(run.spatial_dims) + "D");
  }
  ModelProvenance provenance{model_dir.string(), model.card().name, model.card().version,
                             sha256_file(model_dir / "weights.safetensors")};
  return {std::move(model), engine::Context(threads), std::move(provenance)};
}

std::vector<LabelName> model_structures(const models::RunConfig& run) {
  std::vector<LabelName> names;
  for (std::size_t c = 1; c < run.labels.size(); ++c) {
    names.push_back({static_cast<int>(c), run.labels[c]});
  }
  return names;
}

std::vector<std::string> modality_warnings(const models::RunConfig& run,
                                           const std::string& dicom_modality,
                                           const core::IntensityRange& range) {
  std::vector<std::string> warnings;
  if (run.modality.empty()) {
    return warnings;
  }
  if (!dicom_modality.empty() && dicom_modality != run.modality) {
    warnings.push_back("the model expects " + run.modality + " but the DICOM Modality is " +
                       dicom_modality);
  }
  char text[200];
  if (run.modality == "CT" && (range.min > -500 || range.max < 100)) {
    std::snprintf(text, sizeof text,
                  "the model expects CT in HU (about -1024 to above 1000) but the intensities "
                  "span %g to %g",
                  static_cast<double>(range.min), static_cast<double>(range.max));
    warnings.emplace_back(text);
  }
  if (run.modality == "MR" && range.min < -500) {
    // MR magnitude images are not negative; air at about -1000 is CT in HU.
    std::snprintf(text, sizeof text,
                  "the model expects MR (intensities not below 0) but the intensities span %g "
                  "to %g, as CT in HU does",
                  static_cast<double>(range.min), static_cast<double>(range.max));
    warnings.emplace_back(text);
  }
  return warnings;
}

SegmentReport segment_case(SegmentModel& model, const fs::path& input, const fs::path& case_dir,
                           const SegmentOptions& options) {
  const models::RunConfig& run = model.model.spec().run;
  SegmentReport report;
  StageClock clock(report.timings_seconds);
  ReadInput read = read_input(input, options.series_uid);
  core::Volume& image = read.volume;
  report.input_path = input.string();
  report.input_kind = io::to_string(io::classify_input(input));
  report.geometry = image.geometry;
  report.pixel_type = image.pixel_type;
  report.intensity_range = read.range;
  if (read.series) {
    report.dicom = static_cast<const io::DicomSeriesAttributes&>(*read.series);
  }
  report.model = model.provenance;
  report.cajal_version = version();
  report.threads = model.context.threads();
  for (const std::string& message : modality_warnings(
           run, read.series ? read.series->modality : std::string(), report.intensity_range)) {
    warn(report, message);
  }
  const std::optional<io::DicomSeries> series = reference_series(read, options);
  clock.finish("read");

  // The input's copy for after the network and its hash are made on two more threads while the
  // first preprocesses (the three take about as long: 0.2 s each on the CT bench); all only read
  // the input until held.take(). Everything on the calling thread when --threads 1.
  std::optional<HeldPixels> held;
  std::future<void> holding = begin_work(model.context.threads() > 1, [&held, &image, &case_dir] {
    held.emplace(image, case_dir / ".input_pixels.tmp");
  });
  std::future<void> hashing = begin_work(model.context.threads() > 1, [&report, &image] {
    report.pixel_sha256 = pixel_data_sha256(image);
  });
  PreprocessedImage preprocessed = preprocess(image, run);
  report.preprocessing = to_json(preprocessed.record);
  await_work(hashing);
  await_work(holding);
  held->take(image);
  clock.finish("preprocess");

  InferenceOptions inference = options.inference;
  inference.held_bytes = kProgramBytes + held->bytes();
  InferenceResult inferred =
      infer_labels(model.model, model.context, preprocessed.image, inference);
  report.inference = {{"mode", inferred.report.mode},
                      {"windows", inferred.report.windows},
                      {"peak_bytes_planned", inferred.report.peak_bytes_planned},
                      {"details", inferred.report.details}};
  preprocessed.image = core::Volume();
  clock.finish("inference");

  // The input's pixels come back from the spill file on a second thread meanwhile (the network's
  // buffers are gone by now, so this adds nothing to the peak).
  std::future<void> restored =
      begin_work(model.context.threads() > 1, [&held, &image] { held->restore(image); });
  report.postprocessing = postprocess_labels(inferred.labels, run).details;
  core::Volume labels = restore_labels(inferred.labels, preprocessed.record);
  inferred.labels = core::Volume();
  await_work(restored);
  CAJAL_CHECK(labels.geometry.size == image.geometry.size &&
              core::same_grid(labels.geometry, image.geometry))
      << "restored labels are not on the input's grid";
  clock.finish("postprocess");

  const std::vector<LabelName> names = model_structures(run);
  labels.pixel_type = names.size() > 255 ? core::PixelType::uint16 : core::PixelType::uint8;
  // The label map's gzip runs on a second thread while the statistics, QA pictures and DICOM
  // objects are made from the same (read-only) labels; ITK writes nothing else meanwhile (the
  // masks come after). One thread when --threads 1.
  std::future<void> labels_written = begin_work(model.context.threads() > 1, [&labels, &case_dir] {
    io::write_volume(labels, case_dir / "labels.nii.gz");
  });
  report.outputs.push_back("labels.nii.gz");
  const std::size_t masks_at = report.outputs.size();
  report.structures = measure_structures(image, labels, names);
  for (const StructureStats& stats : report.structures) {
    if (stats.voxel_count == 0) {
      warn(report,
           "structure '" + stats.name + "' (label " + std::to_string(stats.label) + ") is empty");
    }
  }
  if (options.qa) {
    for (const std::string& file : write_qa_images(image, labels, names, report.structures,
                                                   qa_window(run, image), case_dir / "qa")) {
      report.outputs.push_back("qa/" + file);
    }
  }
  if (series) {
    export_dicom(labels, names, *series, options, model, case_dir, report);
  }
  await_work(labels_written);
  if (options.masks) {
    // Listed right after labels.nii.gz, as before the label map was written on its own thread.
    SegmentReport masks;
    write_masks(labels, names, case_dir, masks);
    report.outputs.insert(report.outputs.begin() + static_cast<std::ptrdiff_t>(masks_at),
                          masks.outputs.begin(), masks.outputs.end());
  }
  report.outputs.push_back("report.json");
  clock.finish("write");
  write_text_atomically(case_dir / "report.json", to_json(report).dump(2) + "\n");
  return report;
}

SegmentOutcome run_segment(const SegmentRequest& request) {
  if (request.inputs.empty() == request.manifest.empty()) {
    throw Error("cajal segment", "input paths or --manifest FILE (not both)",
                request.inputs.empty() ? "neither" : "both");
  }
  SegmentOutcome outcome;
  outcome.batch = !request.manifest.empty() || request.inputs.size() > 1;
  const std::vector<BatchCase> cases = request.manifest.empty() ? cases_from_inputs(request.inputs)
                                                                : read_manifest(request.manifest);
  SegmentModel model = load_segment_model(request.options.model_dir, request.options.threads);
  check_tta(model.model.spec().run, request.options.inference.tta);
  if (!outcome.batch) {
    write_folder_atomically(request.outdir, [&](const fs::path& folder) {
      outcome.report = segment_case(model, cases[0].input, folder, request.options);
    });
    return outcome;
  }
  outcome.summary =
      run_batch(cases, request.outdir, [&](const BatchCase& batch_case, const fs::path& folder) {
        segment_case(model, batch_case.input, folder, request.options);
      });
  return outcome;
}

std::int64_t parse_byte_size(const std::string& text) {
  const std::string what = "memory size '" + text + "'";
  const std::string expected = "a number of bytes or a number with K, M, G or T (e.g. 2G)";
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw Error(what, expected, "no number");
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) {
    unit.pop_back();
  }
  double scale = 1;
  if (unit.size() > 1 ||
      (unit.size() == 1 && std::string("KkMmGgTt").find(unit) == std::string::npos)) {
    throw Error(what, expected, "the unit '" + text.substr(used) + "'");
  }
  if (!unit.empty()) {
    const int power = static_cast<int>(std::string("KMGT").find(
                          static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))))) +
                      1;
    scale = std::pow(1024.0, power);
  }
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes > 9.0e18) {
    throw Error(what, "a size of at least 1 byte", text);
  }
  return static_cast<std::int64_t>(bytes);
}

}  // namespace cajal::pipeline
