#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "core/version.h"
#include "pipeline/dicom_export.h"

namespace cajal::apps {
namespace {

struct LabelsToDicomOptions {
  std::string labels;
  std::string reference_dicom;
  std::string series_uid;
  std::string names;
  std::string rtstruct;
  std::string seg;
  std::string uid_root = "2.25";
  std::string label = "cajal";
  std::string series_description = "cajal segmentation";
  bool json = false;
};

}  // namespace

void add_labels_to_dicom_command(CLI::App& app) {
  auto options = std::make_shared<LabelsToDicomOptions>();
  CLI::App* command = app.add_subcommand(
      "labels-to-dicom",
      "Write a label map drawn on a DICOM series as an RT Structure Set and/or DICOM SEG");
  command
      ->add_option("labels", options->labels,
                   "Label map (NIfTI/NRRD/MHA) on the reference series' voxel grid")
      ->required();
  command
      ->add_option("--reference-dicom", options->reference_dicom,
                   "Folder holding the DICOM series the labels were drawn on")
      ->required();
  command->add_option("--series", options->series_uid,
                      "SeriesInstanceUID of the reference series when the folder holds several");
  command
      ->add_option("--names", options->names,
                   "Structures to export: a file of 'N Name' lines or N=Name,N=Name,...")
      ->required();
  auto* rtstruct =
      command->add_option("--rtstruct", options->rtstruct, "Write an RT Structure Set here");
  auto* seg = command->add_option("--seg", options->seg, "Write a DICOM Segmentation here");
  command->add_option("--uid-root", options->uid_root,
                      "Organisation root for new UIDs (default 2.25: UUID-derived)");
  command->add_option("--label", options->label,
                      "StructureSetLabel and SEG ContentLabel (at most 16 characters)");
  command->add_option("--series-description", options->series_description,
                      "SeriesDescription of the new series");
  command->add_flag("--json", options->json, "Print the report as JSON");
  rtstruct->check(CLI::NonexistentPath | CLI::ExistingFile);
  seg->check(CLI::NonexistentPath | CLI::ExistingFile);
  command->callback([options, rtstruct, seg] {
    pipeline::DicomExportOptions export_options;
    if (rtstruct->count() > 0) {
      export_options.rtstruct_path = options->rtstruct;
    }
    if (seg->count() > 0) {
      export_options.seg_path = options->seg;
    }
    export_options.info.uid_root = options->uid_root;
    export_options.info.label = options->label;
    export_options.info.series_description = options->series_description;
    export_options.info.software_version = std::string("cajal ") + version();
    const pipeline::DicomExportReport report =
        pipeline::labels_to_dicom(options->labels, options->reference_dicom, options->series_uid,
                                  options->names, export_options);
    if (options->json) {
      std::cout << pipeline::to_json(report).dump(2) << "\n";
    } else {
      std::cout << pipeline::to_text(report);
    }
  });
}

}  // namespace cajal::apps
