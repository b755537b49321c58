#include "operator/replica_plan.h"

#include <gtest/gtest.h>

namespace cortex::op {
namespace {

using store::ReplicaState;

ReplicaView R(std::string id, bool updated, ReplicaState state, int64_t next_start = 0) {
  return {std::move(id), updated, state, next_start};
}

TEST(PlanReplicas, StartsWhatIsMissing) {
  auto plan = PlanReplicas(3, {R("a", true, ReplicaState::kReady)}, 0);
  EXPECT_EQ(plan.start, 2);
  EXPECT_TRUE(plan.stop.empty());
}

TEST(PlanReplicas, StopsSurplusFailedBeforeReady) {
  auto plan =
      PlanReplicas(1, {R("a", true, ReplicaState::kReady), R("b", true, ReplicaState::kFailed)}, 0);
  EXPECT_EQ(plan.start, 0);
  EXPECT_EQ(plan.stop, std::vector<std::string>{"b"});
  EXPECT_TRUE(plan.restart.empty());
}

TEST(PlanReplicas, RestartsFailedReplicaOnlyAfterBackoff) {
  std::vector<ReplicaView> replicas = {R("a", true, ReplicaState::kFailed, 5000)};
  EXPECT_TRUE(PlanReplicas(1, replicas, 4999).restart.empty());
  EXPECT_EQ(PlanReplicas(1, replicas, 5000).restart, std::vector<std::string>{"a"});
  EXPECT_EQ(PlanReplicas(1, replicas, 5000).start, 0);
}

TEST(PlanReplicas, KeepsServingStaleReplicasUntilNewOnesAreReady) {
  std::vector<ReplicaView> rolling = {R("old", false, ReplicaState::kReady),
                                      R("new", true, ReplicaState::kStarting)};
  auto plan = PlanReplicas(1, rolling, 0);
  EXPECT_EQ(plan.start, 0);
  EXPECT_TRUE(plan.stop.empty());
  rolling[1].state = ReplicaState::kReady;
  EXPECT_EQ(PlanReplicas(1, rolling, 0).stop, std::vector<std::string>{"old"});
}

TEST(PlanReplicas, ReplacesStaleReplicasThatNeverServed) {
  auto plan = PlanReplicas(1, {R("old", false, ReplicaState::kFailed)}, 0);
  EXPECT_EQ(plan.start, 1);
  EXPECT_EQ(plan.stop, std::vector<std::string>{"old"});
}

TEST(PlanReplicas, IgnoresReplicasAlreadyStopping) {
  auto plan = PlanReplicas(1, {R("x", true, ReplicaState::kStopping)}, 0);
  EXPECT_EQ(plan.start, 1);
  EXPECT_TRUE(plan.stop.empty());
}

TEST(RestartBackoff, DoublesUpToThirtySeconds) {
  EXPECT_EQ(RestartBackoffMs(1), 1000);
  EXPECT_EQ(RestartBackoffMs(2), 2000);
  EXPECT_EQ(RestartBackoffMs(3), 4000);
  EXPECT_EQ(RestartBackoffMs(20), 30000);
}

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
