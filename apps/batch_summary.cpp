#include "apps/batch_summary.h"

#include <iostream>

#include "core/error.h"

namespace cajal::apps {

void report_batch(const pipeline::BatchSummary& summary, const std::string& outdir,
                  const std::string& command) {
  std::cout << summary.cases.size() << " cases, " << summary.failed
            << " failed; summary: " << outdir << "/summary.csv\n";
  for (const pipeline::CaseResult& c : summary.cases) {
    std::cout << "  " << c.id << ": " << c.status << (c.error.empty() ? "" : ": " + c.error)
              << "\n";
  }
  if (summary.failed > 0) {
    throw Error(command + " batch", "every case to succeed",
                std::to_string(summary.failed) + " of " + std::to_string(summary.cases.size()) +
                    " failed (see " + outdir + "/summary.csv)");
  }
}

}  // namespace cajal::apps
