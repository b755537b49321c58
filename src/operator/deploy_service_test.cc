// Deploy, patch, refresh, delete and autoscaling events against the in-memory store.
#include "operator/deploy_service.h"

#include <gmock/gmock.h>

#include "models/testing/fake_model_store.h"
#include "operator/testing/control_plane_fixture.h"

namespace cortex::op {
namespace {

using testing::ControlPlaneTest;
using ::testing::HasSubstr;
using testing::kIris;

using DeployServiceTest = ControlPlaneTest;

TEST_F(DeployServiceTest, CreatesThenReportsUpToDate) {
  auto first = Deploy(kIris);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)[0]["message"], "creating iris (RealtimeAPI)");
  auto record = store_.GetApi("iris");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->desired_replicas, 2);
  EXPECT_THAT(LogOf("iris"), HasSubstr("creating iris (RealtimeAPI)"));
  EXPECT_EQ((*Deploy(kIris))[0]["message"], "iris (RealtimeAPI) is already updating");
  reconciler_->Step();  // its replicas are ready
  EXPECT_EQ((*Deploy(kIris))[0]["message"], "iris (RealtimeAPI) is up to date");
}

TEST_F(DeployServiceTest, AChangeWhileUpdatingNeedsForce) {
  ASSERT_TRUE(Deploy(kIris).ok());
  backend_.replica_state = ReplicaState::kStarting;
  reconciler_->Step();
  std::string changed = std::string(kIris) + "    max_replica_concurrency: 7\n";
  auto refused = Deploy(changed);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ((*refused)[0]["error"], "iris is updating (override with --force)");
  auto forced = Deploy(changed, /*force=*/true);
  EXPECT_EQ((*forced)[0]["message"], "updating iris (RealtimeAPI)");
  auto refresh = deploys_->Refresh("iris", false);
  EXPECT_EQ(refresh.status().code(), absl::StatusCode::kFailedPrecondition);
  backend_.replica_state = ReplicaState::kReady;
  reconciler_->Step();
  EXPECT_TRUE(deploys_->Refresh("iris", false).ok());
}

// The observation made before a refresh shows ready replicas of the old deployment: they must
// not count as up to date, or a second refresh would pass while the first one rolls.
TEST_F(DeployServiceTest, ARefreshRightAfterARefreshFindsTheApiUpdating) {
  ASSERT_TRUE(Deploy(kIris).ok());
  reconciler_->Step();
  ASSERT_TRUE(deploys_->Refresh("iris", false).ok());
  EXPECT_EQ(deploys_->Refresh("iris", false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(deploys_->Refresh("iris", true).ok());
}

TEST_F(DeployServiceTest, RefusesAnEndpointAnotherApiUses) {
  ASSERT_TRUE(Deploy(kIris).ok());
  auto clash = Deploy(R"(
- name: other
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  networking: {endpoint: /iris}
)");
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(clash.status().message(), HasSubstr("endpoint /iris is already being used by iris"));
}

TEST_F(DeployServiceTest, RefusesBatchApisWithoutBatchJobsAndModelsWithoutAModelStore) {
  auto batch = Deploy(R"(
- name: b
  kind: BatchAPI
  predictor: {type: python, path: predictor.py}
)");
  EXPECT_THAT(batch.status().message(), HasSubstr("BatchAPI kind is not supported"));
  auto models = Deploy(R"(
- name: m
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, model_path: s3://bucket/model}
)");
  EXPECT_THAT(models.status().message(), HasSubstr("models are not supported by this operator"));
  EXPECT_TRUE(store_.ListApis()->empty());  // all-or-nothing
}

TEST_F(DeployServiceTest, ChecksEveryModelsLayoutBeforeAnythingChanges) {
  models::FakeModelStore models;
  deploys_->EnableModels(&models);
  models.Put("s3://bucket/good/1/model.onnx", "onnx");
  models.Put("s3://bucket/bad/1/model.onnx", "onnx");
  models.Put("s3://bucket/bad/notes.txt", "mixed");
  constexpr char kTwoApis[] = R"(
- name: good
  kind: RealtimeAPI
  predictor: {type: onnx, path: predictor.py, model_path: s3://bucket/good}
- name: bad
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: predictor.py
    models: {paths: [{name: m, model_path: s3://bucket/bad}]}
)";
  auto refused = Deploy(kTwoApis);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("cortex.yaml: bad (RealtimeAPI): predictor: models: paths: m: "
                        "s3://bucket/bad: invalid ONNX model path"));
  EXPECT_TRUE(store_.ListApis()->empty());

  models.Remove("s3://bucket/bad/notes.txt");
  auto deployed = Deploy(kTwoApis);
  ASSERT_TRUE(deployed.ok()) << deployed.status();
  EXPECT_EQ(store_.ListApis()->size(), 2u);

  auto missing = Deploy(R"(
- name: missing
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, model_path: s3://bucket/none}
)");
  EXPECT_THAT(missing.status().message(),
              HasSubstr("predictor: model_path: s3://bucket/none: dir not found or insufficient "
                        "permissions"));
}

TEST_F(DeployServiceTest, RefusesALocalPortItWouldIgnore) {
  auto local = Deploy(R"(
- name: lp
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  networking: {local_port: 8891}
)");
  EXPECT_EQ(local.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(local.status().message(),
              HasSubstr("lp (RealtimeAPI): networking: local_port: is not supported: every API "
                        "is served by the cluster's gateway"));
}

TEST_F(DeployServiceTest, RefusesTensorFlowSayingWhyAndHowToExportToOnnx) {
  auto tf = Deploy(R"(
- name: tf
  kind: RealtimeAPI
  predictor: {type: tensorflow, path: predictor.py, model_path: s3://bucket/tf}
)");
  ASSERT_FALSE(tf.ok());
  EXPECT_THAT(tf.status().message(),
              HasSubstr("tf (RealtimeAPI): predictor: type: tensorflow predictors cannot run on "
                        "this platform"));
  EXPECT_THAT(tf.status().message(), HasSubstr("export the model to ONNX"));
}

TEST_F(DeployServiceTest, AnApiASplitterUsesCannotBeDeleted) {
  ASSERT_TRUE(Deploy(std::string(kIris) + R"(
- name: split
  kind: TrafficSplitter
  apis:
    - {name: iris, weight: 100}
)")
                  .ok());
  auto refused = deploys_->Delete("iris");
  EXPECT_THAT(refused.status().message(),
              HasSubstr("used by the following TrafficSplitter(s): split"));
  EXPECT_TRUE(deploys_->Delete("split").ok());
  EXPECT_TRUE(deploys_->Delete("iris").ok());
  EXPECT_EQ(deploys_->Delete("iris").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DeployServiceTest, AutoscalingEventsApplyOnlyToTheVersionTheyWereFor) {
  ASSERT_TRUE(Deploy(kIris).ok());
  std::string api_id = (*store_.GetApi("iris"))->api_id;
  deploys_->SetDesiredReplicas("iris", "stale-id", 2, 4);
  EXPECT_EQ((*store_.GetApi("iris"))->desired_replicas, 2);
  deploys_->SetDesiredReplicas("iris", api_id, 2, 3);
  EXPECT_EQ((*store_.GetApi("iris"))->desired_replicas, 3);
  EXPECT_EQ((*store_.GetApi("iris"))->api_id, api_id);  // not a new version
  EXPECT_THAT(LogOf("iris"), HasSubstr("iris autoscaling event: 2 -> 3"));
  // A redeploy keeps the autoscaler's count.
  ASSERT_TRUE(Deploy(std::string(kIris) + "    max_replica_concurrency: 9\n").ok());
  EXPECT_EQ((*store_.GetApi("iris"))->desired_replicas, 3);
}

TEST_F(DeployServiceTest, PatchNeedsTheApisDeployed) {
  auto patch = deploys_->Patch({{"config", kIris}});
  EXPECT_EQ(patch.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Deploy(kIris).ok());
  auto patched = deploys_->Patch(
      {{"config", std::string(kIris) + "    max_replica_concurrency: 9\n"}, {"force", true}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)[0]["message"], "updating iris (RealtimeAPI)");
}

TEST_F(DeployServiceTest, ADeployRequestWithWrongTypesIsAnErrorNotACrash) {
  auto result = deploys_->Deploy({{"config", 42}, {"project_id", nullptr}, {"force", "yes"}});
  EXPECT_FALSE(result.ok());
}

}  // namespace
}  // namespace cortex::op
