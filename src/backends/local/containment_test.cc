#include "backends/local/containment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/testing/temp_dir.h"

namespace cortex::backends::local {
namespace {

using ::testing::HasSubstr;

TEST(DescribeContainment, SaysWhyNoCgroupIsUsed) {
  cortex::testing::TempDir root;
  EXPECT_THAT(DescribeContainment("4:memory:/x\n", root.path()),
              HasSubstr("cgroups: not used (no cgroup v2 hierarchy)"));
  std::ofstream(root / "cgroup.controllers") << "hugetlb\n";
  EXPECT_THAT(DescribeContainment("0::/\n", root.path()), HasSubstr("has no memory controller"));
  std::ofstream(root / "cgroup.controllers") << "cpu memory pids\n";
  EXPECT_THAT(DescribeContainment("0::/user.slice/missing\n", root.path()),
              HasSubstr("cgroup /user.slice/missing is not delegated"));
  std::filesystem::create_directories(root / "user.slice/me");
  EXPECT_THAT(DescribeContainment("0::/user.slice/me\n", root.path()),
              HasSubstr("does not place replicas in cgroups yet"));
  EXPECT_THAT(DescribeContainment("0::/user.slice/me\n", root.path()),
              HasSubstr("tracked by parentage"));
}

}  // namespace
}  // namespace cortex::backends::local
