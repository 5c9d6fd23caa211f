// A tiny logger: progress and warnings go to stderr, never stdout. The level is set once by the
// app; library code only calls log().
#pragma once

#include <sstream>
#include <string>

namespace cajal::core {

enum class LogLevel { debug, info, warning, error, quiet };

void set_log_level(LogLevel level);
LogLevel log_level();
void log(LogLevel level, const std::string& message);

inline void log_warning(const std::string& message) {
  log(LogLevel::warning, message);
}
inline void log_info(const std::string& message) {
  log(LogLevel::info, message);
}
inline void log_debug(const std::string& message) {
  log(LogLevel::debug, message);
}

}  // namespace cajal::core
