// The Kubernetes backend against an in-memory API (testing/fake_kube_api.h): create, scale, roll,
// observe, delete, recover after an operator restart, conflicts, and an API that is away.
#include "backends/kubernetes/kubernetes_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/kubernetes/testing/fake_kube_api.h"
#include "config/cluster_config.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::shared_ptr<const config::ApiConfig> Api(const std::string& yaml) {
  config::ParseOptions options;
  options.provider = "kubernetes";
  auto apis = config::ParseApiConfigs(yaml, options);
  EXPECT_TRUE(apis.ok()) << apis.status();
  return std::make_shared<config::ApiConfig>(apis.ok() ? apis->at(0) : config::ApiConfig());
}

constexpr const char* kIris = R"(
- name: iris
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
)";

ReplicaSetSpec Set(int replicas, const std::string& predictor_id = "p1",
                   const std::string& yaml = kIris) {
  ReplicaSetSpec set;
  set.api = Api(yaml);
  set.api_name = set.api->name;
  set.predictor_id = predictor_id;
  set.deployment_id = "d1";
  set.api_id = "a1";
  set.spec_id = "s1";
  set.replicas = replicas;
  return set;
}

json ReadyPod(const std::string& name, const std::string& predictor_id, const std::string& ip) {
  return {{"metadata",
           {{"name", name},
            {"labels",
             {{"apiName", "iris"},
              {"apiKind", "RealtimeAPI"},
              {"predictorID", predictor_id},
              {"deploymentID", "d1"}}}}},
          {"status",
           {{"phase", "Running"},
            {"podIP", ip},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

class KubernetesBackendTest : public ::testing::Test {
 protected:
  testing::FakeKubeApi api_;
  config::KubernetesConfig cluster_;
  KubernetesBackend backend_{api_, cluster_};
};

TEST_F(KubernetesBackendTest, CreatesTheDeploymentAndServiceOnce) {
  auto status = backend_.SyncReplicaSets({Set(2)});
  ASSERT_EQ(status.size(), 1u);
  EXPECT_THAT(status[0].events,
              ElementsAre("created Deployment api-iris", "created Service api-iris"));
  json* deployment = api_.Find(kDeployments, "api-iris");
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ((*deployment)["spec"]["replicas"], 2);
  EXPECT_TRUE((*deployment)["metadata"]["annotations"].contains(kSpecHashAnnotation));
  // Nothing changed: nothing is written.
  api_.calls.clear();
  status = backend_.SyncReplicaSets({Set(2)});
  EXPECT_THAT(api_.Writes(), IsEmpty());
  EXPECT_THAT(status[0].events, IsEmpty());
}

TEST_F(KubernetesBackendTest, ScalesThroughTheScaleSubresource) {
  backend_.SyncReplicaSets({Set(2)});
  api_.calls.clear();
  auto status = backend_.SyncReplicaSets({Set(5)});
  EXPECT_THAT(api_.Writes(), ElementsAre("scale deployments/api-iris 5"));
  EXPECT_THAT(status[0].events, ElementsAre("scaled Deployment api-iris to 5"));
  EXPECT_EQ((*api_.Find(kDeployments, "api-iris"))["spec"]["replicas"], 5);
}

TEST_F(KubernetesBackendTest, ANewVersionReplacesTheDeployment) {
  backend_.SyncReplicaSets({Set(2, "p1")});
  api_.calls.clear();
  auto status = backend_.SyncReplicaSets({Set(2, "p2")});
  EXPECT_THAT(api_.Writes(),
              ElementsAre("replace deployments/api-iris", "replace services/api-iris"));
  json deployment = *api_.Find(kDeployments, "api-iris");
  EXPECT_EQ(deployment["spec"]["template"]["metadata"]["labels"]["predictorID"], "p2");
  // The rolling update itself is the Deployment controller's: update_strategy is its strategy.
  EXPECT_EQ(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
}

TEST_F(KubernetesBackendTest, AConflictIsReReadAndRetried) {
  backend_.SyncReplicaSets({Set(2, "p1")});
  int writes = 0;
  api_.before_replace = [&](const Resource& r, const std::string& name) {
    if (r.plural != kDeployments.plural || writes++ > 0) return;
    // Another writer (kubectl, say) changes the Deployment between our read and our write.
    json other = *api_.Find(kDeployments, name);
    other["metadata"]["labels"]["team"] = "ml";
    api_.Put(kDeployments, other);
  };
  api_.calls.clear();
  auto status = backend_.SyncReplicaSets({Set(2, "p2")});
  EXPECT_THAT(api_.calls, Contains("get deployments/api-iris"));
  EXPECT_THAT(status[0].events, Contains("updated Deployment api-iris"));
  EXPECT_EQ((*api_.Find(kDeployments,
                        "api-iris"))["spec"]["template"]["metadata"]["labels"]["predictorID"],
            "p2");
}

TEST_F(KubernetesBackendTest, ReportsThePodsAsReplicas) {
  backend_.SyncReplicaSets({Set(2, "p2")});
  api_.Put(kPods, ReadyPod("api-iris-new", "p2", "10.0.0.2"));
  api_.Put(kPods, ReadyPod("api-iris-old", "p1", "10.0.0.1"));
  json pending = ReadyPod("api-iris-pending", "p2", "");
  pending["status"] = {{"phase", "Pending"},
                       {"conditions",
                        {{{"type", "PodScheduled"},
                          {"status", "False"},
                          {"reason", "Unschedulable"},
                          {"message", "0/1 nodes are available: 1 Insufficient cpu."}}}}};
  api_.Put(kPods, pending);
  auto status = backend_.SyncReplicaSets({Set(2, "p2")});
  ASSERT_EQ(status[0].replicas.size(), 3u);
  std::map<std::string, ReplicaStatus> by_id;
  for (const auto& r : status[0].replicas) by_id[r.id] = r;
  EXPECT_EQ(by_id["api-iris-new"].state, ReplicaState::kReady);
  EXPECT_TRUE(by_id["api-iris-new"].updated);
  EXPECT_EQ(by_id["api-iris-new"].endpoint.host, "10.0.0.2");
  EXPECT_FALSE(by_id["api-iris-old"].updated);
  EXPECT_EQ(by_id["api-iris-pending"].state, ReplicaState::kStalled);
  EXPECT_THAT(status[0].events,
              Contains(HasSubstr("replica api-iris-pending: compute unavailable: 0/1 nodes")));
}

TEST_F(KubernetesBackendTest, AnOperatorRestartChangesNothing) {
  backend_.SyncReplicaSets({Set(3)});
  KubernetesBackend restarted(api_, cluster_);
  api_.calls.clear();
  auto status = restarted.SyncReplicaSets({Set(3)});
  EXPECT_THAT(api_.Writes(), IsEmpty());
  EXPECT_THAT(status[0].events, IsEmpty());
}

TEST_F(KubernetesBackendTest, DeletesTheObjectsOfDeletedApisOnly) {
  backend_.SyncReplicaSets({Set(1)});
  // Someone else's Deployment in the namespace is left alone.
  api_.Put(kDeployments, {{"metadata", {{"name", "not-ours"}}}, {"spec", json::object()}});
  api_.calls.clear();
  backend_.SyncReplicaSets({});
  EXPECT_THAT(api_.Writes(),
              ElementsAre("delete deployments/api-iris", "delete services/api-iris"));
  EXPECT_NE(api_.Find(kDeployments, "not-ours"), nullptr);
}

TEST_F(KubernetesBackendTest, AnApiThatCannotBeListedKeepsItsLastObservation) {
  backend_.SyncReplicaSets({Set(1)});
  api_.Put(kPods, ReadyPod("api-iris-1", "p1", "10.0.0.1"));
  ASSERT_EQ(backend_.SyncReplicaSets({Set(1)})[0].replicas.size(), 1u);
  api_.list_error = absl::UnavailableError("connection refused");
  api_.calls.clear();
  auto status = backend_.SyncReplicaSets({Set(1)});
  ASSERT_EQ(status[0].replicas.size(), 1u);  // still routed: the pod did not go away
  EXPECT_EQ(status[0].replicas[0].endpoint.host, "10.0.0.1");
  EXPECT_THAT(status[0].events, ElementsAre("kubernetes: connection refused"));
  EXPECT_THAT(api_.Writes(), IsEmpty());  // nothing is created or deleted blind
  backend_.SyncReplicaSets({});           // even when the set is gone
  EXPECT_NE(api_.Find(kDeployments, "api-iris"), nullptr);
}

TEST_F(KubernetesBackendTest, AnUnplaceableApiIsComputeUnavailable) {
  cluster_.node_groups.push_back({"cpu", {{"a", "b"}}, false, "none", {}});
  KubernetesBackend backend(api_, cluster_);
  auto status = backend.SyncReplicaSets({Set(1, "p1", R"(
- name: gpu
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {gpu: 1}
)")});
  ASSERT_EQ(status[0].replicas.size(), 1u);
  EXPECT_EQ(status[0].replicas[0].state, ReplicaState::kStalled);
  EXPECT_THAT(status[0].events, ElementsAre(HasSubstr("cannot run: compute: gpu: no node group")));
  EXPECT_EQ(api_.Count(kDeployments), 0u);
}

// ---- batch jobs ----

WorkerSetSpec Workers(int running) {
  WorkerSetSpec set;
  set.api = Api(R"(
- name: batch
  kind: BatchAPI
  predictor: {type: python, path: predictor.py}
)");
  set.api_name = "batch";
  set.job_id = "69e2f1a0c3d4b5e6";
  set.running = running;
  set.max_failures = 4;
  return set;
}

json WorkerPod(const std::string& name, const std::string& phase) {
  return {{"metadata",
           {{"name", name}, {"labels", {{"apiKind", "BatchAPI"}, {"jobID", "69e2f1a0c3d4b5e6"}}}}},
          {"status", {{"phase", phase}}}};
}

TEST_F(KubernetesBackendTest, AJobRunsItsWorkersAndReportsEachExitOnce) {
  auto status = backend_.SyncWorkerSets({Workers(3)});
  EXPECT_THAT(status[0].events, ElementsAre("created Job batch-69e2f1a0c3d4b5e6"));
  json job = *api_.Find(kJobs, "batch-69e2f1a0c3d4b5e6");
  EXPECT_EQ(job["spec"]["parallelism"], 3);
  EXPECT_EQ(job["spec"]["backoffLimit"], 3);

  api_.Put(kPods, WorkerPod("w-1", "Running"));
  api_.Put(kPods, WorkerPod("w-2", "Succeeded"));
  json failed = WorkerPod("w-3", "Failed");
  failed["status"]["containerStatuses"] = {
      {{"state", {{"terminated", {{"exitCode", 1}, {"reason", "Error"}}}}}}};
  api_.Put(kPods, failed);
  status = backend_.SyncWorkerSets({Workers(3)});
  EXPECT_EQ(status[0].running, 1);
  EXPECT_EQ(status[0].succeeded, 1);
  EXPECT_EQ(status[0].failed, 1);
  ASSERT_EQ(status[0].exits.size(), 2u);
  EXPECT_EQ(status[0].exits[1].reason, "exited with status 1 (Error)");
  status = backend_.SyncWorkerSets({Workers(3)});
  EXPECT_THAT(status[0].exits, IsEmpty());  // reported once
  EXPECT_EQ(status[0].failed, 1);

  // Fewer workers needed (the queue is nearly empty): the Job's parallelism follows.
  api_.calls.clear();
  backend_.SyncWorkerSets({Workers(1)});
  EXPECT_EQ((*api_.Find(kJobs, "batch-69e2f1a0c3d4b5e6"))["spec"]["parallelism"], 1);
  // The job is over: its Job goes.
  backend_.SyncWorkerSets({});
  EXPECT_EQ(api_.Count(kJobs), 0u);
}

TEST_F(KubernetesBackendTest, StopAllDeletesEveryWorkload) {
  backend_.SyncReplicaSets({Set(1)});
  backend_.SyncWorkerSets({Workers(1)});
  backend_.StopAll();
  EXPECT_EQ(api_.Count(kDeployments), 0u);
  EXPECT_EQ(api_.Count(kServices), 0u);
  EXPECT_EQ(api_.Count(kJobs), 0u);
}

}  // namespace
}  // namespace cortex::backends::kubernetes
