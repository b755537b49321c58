#include "operator/api_status.h"

#include <gtest/gtest.h>

#include <vector>

namespace cortex::op {
namespace {

struct StatusCase {
  ReplicaCounts counts;
  int requested;
  int min_replicas;
  std::string code;
};

TEST(StatusCode, FollowsCortexPrecedence) {
  auto counts = [](int ready, int failed, int oom, int stalled, int initializing) {
    ReplicaCounts c;
    c.ready = ready;
    c.failed = failed;
    c.killed_oom = oom;
    c.stalled = stalled;
    c.initializing = initializing;
    return c;
  };
  std::vector<StatusCase> cases = {
      {counts(1, 0, 0, 0, 0), 1, 1, "status_live"},
      {counts(1, 1, 0, 0, 0), 1, 1, "status_live"},   // ready >= requested wins
      {counts(0, 1, 1, 0, 0), 1, 1, "status_error"},  // error before oom
      {counts(0, 0, 1, 0, 0), 1, 1, "status_oom"},
      {counts(0, 0, 0, 1, 0), 1, 1, "status_stalled"},
      {counts(1, 0, 0, 0, 1), 2, 1, "status_live"},  // at least min_replicas ready
      {counts(0, 0, 0, 0, 1), 1, 1, "status_updating"},
      {counts(1, 0, 0, 0, 1), 3, 2, "status_updating"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(StatusCode(c.counts, c.requested, c.min_replicas), c.code)
        << "ready=" << c.counts.ready << " requested=" << c.requested;
  }
  EXPECT_EQ(StatusText("status_oom"), "error (out of memory)");
  EXPECT_EQ(StatusText("status_stalled"), "compute unavailable");
}

}  // namespace
}  // namespace cortex::op
