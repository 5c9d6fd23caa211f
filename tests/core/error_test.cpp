#include "core/error.h"

#include <gtest/gtest.h>

namespace cajal {
namespace {

TEST(Error, SaysWhatExpectedAndGot) {
  const Error e("tensor 'enc0.conv1.weight'", "shape [16,1,3,3,3]", "[16,1,3,3]");
  EXPECT_STREQ(e.what(), "tensor 'enc0.conv1.weight': expected shape [16,1,3,3,3], got [16,1,3,3]");
}

TEST(Check, ThrowsInternalErrorWithContextWhenFalse) {
  try {
    CAJAL_CHECK(1 + 1 == 3) << "arithmetic " << 42;
    FAIL() << "expected InternalError";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("1 + 1 == 3: arithmetic 42"), std::string::npos)
        << e.what();
  }
}

TEST(Check, DoesNothingWhenTrue) {
  EXPECT_NO_THROW(CAJAL_CHECK(true) << "unused");
}

}  // namespace
}  // namespace cajal
