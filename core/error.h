// Errors of cajal: Error for anything caused by input, InternalError for broken invariants.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cajal {

// Input that does not fit (a file, a spec, a shape, a DICOM series): says what, expected, got.
// The command line maps it to exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // "what: expected EXPECTED, got GOT"
  Error(const std::string& what, const std::string& expected, const std::string& got)
      : std::runtime_error(what + ": expected " + expected + ", got " + got) {}
};

// A broken invariant inside cajal (a bug, not bad input). Exit code 2.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& message) : std::logic_error(message) {}
};

namespace detail {
// Collects the streamed context of a failed CAJAL_CHECK and throws InternalError at the end of
// the full expression.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": check failed: " << condition << ": ";
  }
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure() noexcept(false) { throw InternalError(stream_.str()); }
  template <typename T>
  CheckFailure& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};
}  // namespace detail

}  // namespace cajal

// CAJAL_CHECK(cond) << context; on in release builds.
#define CAJAL_CHECK(cond) \
  if (cond) {             \
  } else                  \
    ::cajal::detail::CheckFailure(__FILE__, __LINE__, #cond)
