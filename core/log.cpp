#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace cajal::core {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::mutex g_mutex;

const char* prefix(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug: ";
    case LogLevel::warning:
      return "warning: ";
    case LogLevel::error:
      return "error: ";
    default:
      return "";
  }
}

}  // namespace

void set_log_level(LogLevel level) {
  g_level = level;
}
LogLevel log_level() {
  return g_level;
}

void log(LogLevel level, const std::string& message) {
  if (level < g_level.load()) {
    return;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s%s\n", prefix(level), message.c_str());
}

}  // namespace cajal::core
