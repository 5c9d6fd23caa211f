// What `cajal segment` and `cajal classify` print after a batch, and the error that makes the
// run exit non-zero when a case failed.
#pragma once

#include <string>

#include "pipeline/batch.h"

namespace cajal::apps {

// Prints the case count, failures and each case's status on stdout; throws Error naming
// `command` when any case failed.
void report_batch(const pipeline::BatchSummary& summary, const std::string& outdir,
                  const std::string& command);

}  // namespace cajal::apps
