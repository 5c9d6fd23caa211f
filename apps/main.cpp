// cajal: medical image segmentation and classification on the CPU. Parses arguments, runs one
// subcommand, and maps what it throws to exit codes: 0 success, 1 bad input or usage, 2 bug.
#include <exception>
#include <iostream>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

int main(int argc, char** argv) {
  CLI::App app{"cajal: medical image segmentation and classification on the CPU", "cajal"};
  app.set_version_flag("--version", std::string("cajal ") + cajal::version());
  app.require_subcommand(1);
  app.fallthrough();
  bool quiet = false;
  bool verbose = false;
  auto* quiet_flag = app.add_flag("-q,--quiet", quiet, "Print only errors on stderr");
  app.add_flag("-v,--verbose", verbose, "Print debugging messages on stderr")->excludes(quiet_flag);
  app.parse_complete_callback([&] {
    cajal::core::set_log_level(quiet     ? cajal::core::LogLevel::error
                               : verbose ? cajal::core::LogLevel::debug
                                         : cajal::core::LogLevel::info);
  });
  cajal::apps::add_info_command(app);
  cajal::apps::add_convert_command(app);
  cajal::apps::add_phantom_command(app);
  cajal::apps::add_labels_to_dicom_command(app);
  cajal::apps::add_evaluate_command(app);
  cajal::apps::add_evaluate_classifier_command(app);
  cajal::apps::add_model_command(app);
  cajal::apps::add_train_command(app);
  cajal::apps::add_segment_command(app);
  cajal::apps::add_classify_command(app);
  try {
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const cajal::Error& e) {
    cajal::core::log(cajal::core::LogLevel::error, e.what());
    return 1;
  } catch (const std::exception& e) {
    cajal::core::log(cajal::core::LogLevel::error,
                     std::string("internal error (a bug in cajal): ") + e.what());
    return 2;
  }
}
