#include "io/structure_set.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace cajal::io {
namespace {

TEST(MakeDicomUid, DefaultRootGivesUuidDerivedUidsThatDiffer) {
  std::set<std::string> uids;
  for (int n = 0; n < 100; ++n) {
    const std::string uid = make_dicom_uid("2.25");
    ASSERT_EQ(uid.rfind("2.25.", 0), 0u) << uid;
    EXPECT_LE(uid.size(), 64u) << uid;
    EXPECT_NE(uid[5], '0') << uid;
    EXPECT_EQ(uid.find_first_not_of("0123456789", 5), std::string::npos) << uid;
    uids.insert(uid);
  }
  EXPECT_EQ(uids.size(), 100u);
}

TEST(MakeDicomUid, OrganisationRootPrefixesTheUid) {
  const std::string uid = make_dicom_uid("1.2.826.0.1.3680043.10.99");
  EXPECT_EQ(uid.rfind("1.2.826.0.1.3680043.10.99.", 0), 0u) << uid;
  EXPECT_LE(uid.size(), 64u);
}

TEST(ValidateUidRoot, RefusesMalformedRoots) {
  for (const char* root :
       {"", "1..2", "1.02", ".1", "1.", "1.2a", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17"}) {
    EXPECT_THROW(validate_uid_root(root), Error) << root;
  }
  EXPECT_NO_THROW(validate_uid_root("1.2.0.3"));
}

}  // namespace
}  // namespace cajal::io
