#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/batch_summary.h"
#include "apps/commands.h"
#include "core/error.h"
#include "pipeline/segment.h"

namespace cajal::apps {
namespace {

struct SegmentArguments {
  std::vector<std::string> inputs;
  std::string manifest;
  std::string outdir;
  std::string model;
  std::string memory_limit = "2G";
  bool no_qa = false;
  pipeline::SegmentOptions options;
};

void print_report(const pipeline::SegmentReport& report, const std::string& outdir) {
  const std::filesystem::path folder(outdir);
  std::cout << "labels: " << (folder / "labels.nii.gz").string()
            << "\nreport: " << (folder / "report.json").string() << "\n";
  for (const pipeline::StructureStats& stats : report.structures) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-24s %10lld voxels %10.2f mL%s\n", stats.name.c_str(),
                  static_cast<long long>(stats.voxel_count), stats.volume_ml,
                  stats.touches_edge ? "  (touches the edge)" : "");
    std::cout << line;
  }
}

}  // namespace

void add_segment_command(CLI::App& app) {
  auto args = std::make_shared<SegmentArguments>();
  pipeline::SegmentOptions& options = args->options;
  CLI::App* command = app.add_subcommand(
      "segment", "Segment organs in CT/MR studies: label map, masks, report.json, QA pictures");
  command->add_option("inputs", args->inputs,
                      "DICOM series folders or NIfTI/NRRD/MHA files; several make a batch");
  command->add_option("--manifest", args->manifest,
                      "A CSV file with the header id,path and one case a row (a batch)");
  command->add_option("-o,--output", args->outdir, "Output folder (one subfolder per batch case)")
      ->required();
  command->add_option("--model", args->model,
                      std::string("Model folder (default: the bundled CT model, models/") +
                          pipeline::kBundledSegmentModel + "/)");
  command->add_option("--series", options.series_uid,
                      "SeriesInstanceUID when a DICOM folder holds several series");
  command->add_option("--overlap", options.inference.overlap, "Sliding-window overlap in [0, 1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command->add_flag("--tta", options.inference.tta, "Mirroring test-time augmentation");
  command->add_option("--memory-limit", args->memory_limit, "Memory for inference, e.g. 2G or 512M")
      ->capture_default_str();
  command->add_option("--mode", options.inference.mode, "Inference: auto, window, slab or whole")
      ->check(CLI::IsMember({"auto", "window", "slab", "whole"}))
      ->capture_default_str();
  command->add_option("--threads", options.threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  command->add_flag("--masks", options.masks, "Also write masks/<Label>.nii.gz per structure");
  command->add_flag("--no-qa", args->no_qa, "Do not write the qa/ pictures");
  command->add_flag("--rtstruct", options.rtstruct,
                    "Also write rtstruct.dcm (DICOM input or --reference-dicom)");
  command->add_flag("--dicom-seg", options.dicom_seg,
                    "Also write seg.dcm (DICOM input or --reference-dicom)");
  command->add_option("--reference-dicom", options.reference_dicom,
                      "The DICOM series a NIfTI/NRRD/MHA input lies on, for --rtstruct and "
                      "--dicom-seg");
  command->callback([args] {
    pipeline::SegmentRequest request;
    for (const std::string& input : args->inputs) {
      request.inputs.emplace_back(input);
    }
    request.manifest = args->manifest;
    request.outdir = args->outdir;
    request.options = args->options;
    request.options.model_dir = args->model;
    request.options.qa = !args->no_qa;
    request.options.inference.memory_limit_bytes = pipeline::parse_byte_size(args->memory_limit);
    const pipeline::SegmentOutcome outcome = pipeline::run_segment(request);
    if (!outcome.batch) {
      print_report(*outcome.report, args->outdir);
      return;
    }
    report_batch(outcome.summary, args->outdir, "cajal segment");
  });
}

}  // namespace cajal::apps
