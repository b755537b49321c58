#include "backends/kubernetes/pod_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json Pod(json status, json labels = {{"predictorID", "p1"}, {"deploymentID", "d1"}}) {
  return {{"metadata", {{"name", "api-iris-7d9-abcde"}, {"labels", labels}}},
          {"spec", {{"nodeName", "node-1"}}},
          {"status", status}};
}

TEST(PodStatus, AReadyPodIsAReadyReplicaAtItsIp) {
  ReplicaStatus r =
      PodReplica(Pod({{"phase", "Running"},
                      {"podIP", "10.0.0.7"},
                      {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                      {"containerStatuses",
                       {{{"restartCount", 2}, {"state", {{"running", json::object()}}}}}}}),
                 "p1", "d1");
  EXPECT_EQ(r.id, "api-iris-7d9-abcde");
  EXPECT_EQ(r.state, ReplicaState::kReady);
  EXPECT_TRUE(r.updated);
  EXPECT_EQ(r.endpoint.host, "10.0.0.7");
  EXPECT_EQ(r.endpoint.port, 8888);
  EXPECT_EQ(r.restarts, 2);
  EXPECT_EQ(r.details["node"], "node-1");
}

TEST(PodStatus, AnotherVersionIsNotUpdated) {
  EXPECT_FALSE(PodReplica(Pod({{"phase", "Running"}}), "p2", "d1").updated);
  EXPECT_FALSE(PodReplica(Pod({{"phase", "Running"}}), "p1", "d2").updated);
}

TEST(PodStatus, OomKilledIsOutOfMemory) {
  ReplicaStatus r = PodReplica(
      Pod({{"phase", "Running"},
           {"containerStatuses",
            {{{"restartCount", 1},
              {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
              {"lastState", {{"terminated", {{"reason", "OOMKilled"}, {"exitCode", 137}}}}}}}}}),
      "p1", "d1");
  EXPECT_EQ(r.state, ReplicaState::kOom);
  EXPECT_EQ(r.details["problem"], "out of memory (OOMKilled)");
}

TEST(PodStatus, UnschedulableIsComputeUnavailable) {
  json pod = Pod({{"phase", "Pending"},
                  {"conditions",
                   {{{"type", "PodScheduled"},
                     {"status", "False"},
                     {"reason", "Unschedulable"},
                     {"message", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}}}});
  EXPECT_EQ(PodReplica(pod, "p1", "d1").state, ReplicaState::kStalled);
  EXPECT_EQ(PodProblem(pod),
            "compute unavailable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.");
}

TEST(PodStatus, CrashLoopsAndBadImagesAreFailures) {
  for (const char* reason : {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"}) {
    json pod = Pod({{"phase", "Pending"},
                    {"containerStatuses",
                     {{{"state", {{"waiting", {{"reason", reason}, {"message", "back-off"}}}}}}}}});
    EXPECT_EQ(PodReplica(pod, "p1", "d1").state, ReplicaState::kFailed) << reason;
    EXPECT_THAT(PodProblem(pod), HasSubstr(reason));
  }
  EXPECT_EQ(PodReplica(Pod({{"phase", "Failed"}}), "p1", "d1").state, ReplicaState::kFailed);
}

TEST(PodStatus, StartingUntilReadyAndStoppingOnceDeleted) {
  json creating =
      Pod({{"phase", "Pending"},
           {"containerStatuses", {{{"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}}}}});
  EXPECT_EQ(PodReplica(creating, "p1", "d1").state, ReplicaState::kStarting);
  EXPECT_EQ(PodProblem(creating), "");
  json deleted =
      Pod({{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}});
  deleted["metadata"]["deletionTimestamp"] = "2026-12-02T05:00:00Z";
  EXPECT_EQ(PodReplica(deleted, "p1", "d1").state, ReplicaState::kStopping);
  // A pod without any status yet (just created) is starting, and has no endpoint.
  ReplicaStatus bare = PodReplica(json{{"metadata", {{"name", "x"}}}}, "p1", "d1");
  EXPECT_EQ(bare.state, ReplicaState::kStarting);
  EXPECT_TRUE(bare.endpoint.host.empty());
}

}  // namespace
}  // namespace cortex::backends::kubernetes
