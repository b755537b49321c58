#include "backends/local/replica_plan.h"

#include <gtest/gtest.h>

namespace cortex::backends::local {
namespace {

constexpr RolloutLimits kSurgeAll{100, 0};

ReplicaView R(std::string id, bool updated, ReplicaState state, int64_t next_start = 0) {
  return {std::move(id), updated, state, next_start};
}

TEST(PlanReplicas, StartsWhatIsMissing) {
  auto plan = PlanReplicas(3, kSurgeAll, {R("a", true, ReplicaState::kReady)}, 0);
  EXPECT_EQ(plan.start, 2);
  EXPECT_TRUE(plan.stop.empty());
}

TEST(PlanReplicas, StopsSurplusFailedBeforeReady) {
  auto plan = PlanReplicas(
      1, kSurgeAll, {R("a", true, ReplicaState::kReady), R("b", true, ReplicaState::kFailed)}, 0);
  EXPECT_EQ(plan.start, 0);
  EXPECT_EQ(plan.stop, std::vector<std::string>{"b"});
  EXPECT_TRUE(plan.restart.empty());
}

TEST(PlanReplicas, RestartsFailedReplicaOnlyAfterBackoff) {
  std::vector<ReplicaView> replicas = {R("a", true, ReplicaState::kFailed, 5000)};
  EXPECT_TRUE(PlanReplicas(1, kSurgeAll, replicas, 4999).restart.empty());
  EXPECT_EQ(PlanReplicas(1, kSurgeAll, replicas, 5000).restart, std::vector<std::string>{"a"});
  EXPECT_EQ(PlanReplicas(1, kSurgeAll, replicas, 5000).start, 0);
}

TEST(PlanReplicas, KeepsServingStaleReplicasUntilNewOnesAreReady) {
  std::vector<ReplicaView> rolling = {R("old", false, ReplicaState::kReady),
                                      R("new", true, ReplicaState::kStarting)};
  auto plan = PlanReplicas(1, kSurgeAll, rolling, 0);
  EXPECT_EQ(plan.start, 0);
  EXPECT_TRUE(plan.stop.empty());
  rolling[1].state = ReplicaState::kReady;
  EXPECT_EQ(PlanReplicas(1, kSurgeAll, rolling, 0).stop, std::vector<std::string>{"old"});
}

TEST(PlanReplicas, ReplacesStaleReplicasThatNeverServed) {
  auto plan = PlanReplicas(1, kSurgeAll, {R("old", false, ReplicaState::kFailed)}, 0);
  EXPECT_EQ(plan.start, 1);
  EXPECT_EQ(plan.stop, std::vector<std::string>{"old"});
}

TEST(PlanReplicas, IgnoresReplicasAlreadyStopping) {
  auto plan = PlanReplicas(1, kSurgeAll, {R("x", true, ReplicaState::kStopping)}, 0);
  EXPECT_EQ(plan.start, 1);
  EXPECT_TRUE(plan.stop.empty());
}

std::vector<ReplicaView> Fleet(int stale_ready, int updated_ready, int updated_starting) {
  std::vector<ReplicaView> out;
  for (int i = 0; i < stale_ready; ++i)
    out.push_back(R("old" + std::to_string(i), false, ReplicaState::kReady));
  for (int i = 0; i < updated_ready; ++i)
    out.push_back(R("new" + std::to_string(i), true, ReplicaState::kReady));
  for (int i = 0; i < updated_starting; ++i) {
    out.push_back(R("starting" + std::to_string(i), true, ReplicaState::kStarting));
  }
  return out;
}

TEST(ResolveRollout, RoundsSurgeUpAndUnavailableDown) {
  RolloutLimits l = ResolveRollout("25%", "25%", 4);
  EXPECT_EQ(l.max_surge, 1);
  EXPECT_EQ(l.max_unavailable, 1);
  l = ResolveRollout("25%", "25%", 3);
  EXPECT_EQ(l.max_surge, 1);        // 0.75 rounds up
  EXPECT_EQ(l.max_unavailable, 0);  // 0.75 rounds down
  l = ResolveRollout("0", "0%", 5);
  EXPECT_EQ(l.max_surge, 0);
  EXPECT_EQ(l.max_unavailable, 1);  // both zero: progress still possible
  l = ResolveRollout("2", "100%", 4);
  EXPECT_EQ(l.max_surge, 2);
  EXPECT_EQ(l.max_unavailable, 4);
}

TEST(PlanReplicas, RollingUpdateRespectsMaxSurge) {
  // 4 old ready, nothing new yet, surge 1, unavailable 0: one new replica at a time.
  auto plan = PlanReplicas(4, {1, 0}, Fleet(4, 0, 0), 0);
  EXPECT_EQ(plan.start, 1);
  EXPECT_TRUE(plan.stop.empty());
  // The new one is starting: no room for another, nothing may stop.
  plan = PlanReplicas(4, {1, 0}, Fleet(4, 0, 1), 0);
  EXPECT_EQ(plan.start, 0);
  EXPECT_TRUE(plan.stop.empty());
  // It is ready: one old replica may go, and (with it gone) one more new one may start.
  plan = PlanReplicas(4, {1, 0}, Fleet(4, 1, 0), 0);
  EXPECT_EQ(plan.stop.size(), 1u);
  EXPECT_EQ(plan.start, 1);
}

TEST(PlanReplicas, RollingUpdateRespectsMaxUnavailable) {
  // Surge 0, unavailable 1: an old replica stops first, then its replacement starts.
  auto plan = PlanReplicas(3, {0, 1}, Fleet(3, 0, 0), 0);
  EXPECT_EQ(plan.stop.size(), 1u);
  EXPECT_EQ(plan.start, 1);
  // While the replacement starts, no further old replica may stop (2 of 3 must stay ready).
  plan = PlanReplicas(3, {0, 1}, Fleet(2, 0, 1), 0);
  EXPECT_TRUE(plan.stop.empty());
  EXPECT_EQ(plan.start, 0);
}

TEST(PlanReplicas, FinishedRolloutStopsTheRest) {
  auto plan = PlanReplicas(2, {1, 0}, Fleet(2, 2, 0), 0);
  EXPECT_EQ(plan.stop.size(), 2u);
  EXPECT_EQ(plan.start, 0);
}

TEST(RestartBackoff, DoublesUpToThirtySeconds) {
  EXPECT_EQ(RestartBackoffMs(1), 1000);
  EXPECT_EQ(RestartBackoffMs(2), 2000);
  EXPECT_EQ(RestartBackoffMs(3), 4000);
  EXPECT_EQ(RestartBackoffMs(20), 30000);
}

}  // namespace
}  // namespace cortex::backends::local
