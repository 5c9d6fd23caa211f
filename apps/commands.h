// The subcommands of `cajal`. Each add_*_command registers its options and a callback that
// calls pipeline/; errors propagate to main(), which maps them to exit codes once.
#pragma once

#include <CLI/CLI.hpp>

namespace cajal::apps {

void add_info_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_phantom_command(CLI::App& app);
void add_labels_to_dicom_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_evaluate_classifier_command(CLI::App& app);
void add_model_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_segment_command(CLI::App& app);
void add_classify_command(CLI::App& app);

}  // namespace cajal::apps
