// The control loop against the fake backend: what it asks the provider for, and the routes it
// publishes from what the provider reports.
#include "operator/reconciler.h"

#include <gmock/gmock.h>

#include "operator/testing/control_plane_fixture.h"

namespace cortex::op {
namespace {

using testing::ControlPlaneTest;
using ::testing::HasSubstr;
using testing::kIris;

using ReconcilerTest = ControlPlaneTest;

TEST_F(ReconcilerTest, ADeployedApiBecomesAReplicaSetOfItsVersion) {
  ASSERT_TRUE(Deploy(kIris).ok());
  reconciler_->Step();
  auto sets = backend_.LastSets();
  ASSERT_EQ(sets.count("iris"), 1u);
  const auto& set = sets["iris"];
  EXPECT_EQ(set.replicas, 2);  // min_replicas
  auto record = store_.GetApi("iris");
  EXPECT_EQ(set.predictor_id, (*record)->predictor_id);
  EXPECT_EQ(set.deployment_id, (*record)->deployment_id);
  EXPECT_EQ(set.python, "/usr/bin/python3");
  EXPECT_EQ(set.env.at("CORTEX_LOAD_BALANCER_URL"), "http://127.0.0.1:8889");
  ASSERT_TRUE(set.api);
  EXPECT_EQ(set.api->autoscaling.max_replicas, 4);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(set.project_dir) / "predictor.py"));
}

TEST_F(ReconcilerTest, PublishesOnlyReadyReplicas) {
  ASSERT_TRUE(Deploy(kIris).ok());
  backend_.replica_state = ReplicaState::kStarting;
  reconciler_->Step();
  const gateway::ApiRoute* route = reconciler_->routes()->FindByName("iris");
  ASSERT_NE(route, nullptr);
  EXPECT_TRUE(route->replicas.empty());
  int64_t version = reconciler_->routes_version();
  backend_.replica_state = ReplicaState::kReady;
  reconciler_->Step();
  route = reconciler_->routes()->FindByName("iris");
  EXPECT_EQ(route->replicas.size(), 2u);
  EXPECT_EQ(route->endpoint, "/iris");
  EXPECT_GT(reconciler_->routes_version(), version);
  // Nothing changed: the version stays (the gateways' long polls keep waiting).
  version = reconciler_->routes_version();
  reconciler_->Step();
  EXPECT_EQ(reconciler_->routes_version(), version);
}

TEST_F(ReconcilerTest, ADeletedApiLeavesTheRoutesBeforeItsReplicaSetGoes) {
  ASSERT_TRUE(Deploy(kIris).ok());
  reconciler_->Step();
  ASSERT_NE(reconciler_->routes()->FindByName("iris"), nullptr);
  ASSERT_TRUE(deploys_->Delete("iris").ok());
  bool unpublished_before_sync = false;
  size_t calls = backend_.replica_calls.size();
  reconciler_->OnRoutesChanged([&] {
    unpublished_before_sync = backend_.replica_calls.size() == calls &&
                              reconciler_->routes()->FindByName("iris") == nullptr;
  });
  reconciler_->Step();
  EXPECT_TRUE(unpublished_before_sync);
  EXPECT_EQ(backend_.LastSets().count("iris"), 0u);
}

TEST_F(ReconcilerTest, TheProvidersEventsGoToTheApisLog) {
  ASSERT_TRUE(Deploy(kIris).ok());
  backend_.events["iris"] = {"replica iris-1 exited with status 1; restarting it in 1s"};
  reconciler_->Step();
  EXPECT_THAT(LogOf("iris"), HasSubstr("[operator] replica iris-1 exited with status 1"));
}

TEST_F(ReconcilerTest, ARefreshRollsToANewDeploymentAndResetsTheMetricsKey) {
  ASSERT_TRUE(Deploy(kIris).ok());
  reconciler_->Step();
  std::string before = backend_.LastSets()["iris"].deployment_id;
  std::string key = reconciler_->routes()->FindByName("iris")->metrics_key;
  ASSERT_TRUE(deploys_->Refresh("iris", false).ok());
  reconciler_->Step();
  EXPECT_NE(backend_.LastSets()["iris"].deployment_id, before);
  EXPECT_NE(reconciler_->routes()->FindByName("iris")->metrics_key, key);
}

TEST_F(ReconcilerTest, TheObservationFeedsTheApiStatus) {
  ASSERT_TRUE(Deploy(kIris).ok());
  backend_.replica_state = ReplicaState::kStalled;
  reconciler_->Step();
  auto api = views_->Get("iris");
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_EQ((*api)["status"]["status"], "compute unavailable");
  EXPECT_EQ((*api)["replicas"].size(), 2u);
  backend_.replica_state = ReplicaState::kReady;
  reconciler_->Step();
  EXPECT_EQ((*views_->Get("iris"))["status"]["status"], "live");
}

}  // namespace
}  // namespace cortex::op
