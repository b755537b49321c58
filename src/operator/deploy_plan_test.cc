#include "operator/deploy_plan.h"

#include <gtest/gtest.h>

namespace cortex::op {
namespace {

using Action = DeployDecision::Action;
using nlohmann::json;

json Spec(int processes, const std::string& endpoint) {
  return {{"predictor", {{"type", "python"}, {"processes_per_replica", processes}}},
          {"networking", {{"endpoint", endpoint}}},
          {"compute", {{"cpu", "200m"}}},
          {"autoscaling", {{"min_replicas", 1}, {"max_replicas", 5}, {"init_replicas", 2}}}};
}

store::ApiRecord Deployed(const VersionIds& ids) {
  store::ApiRecord api;
  api.name = "iris";
  api.kind = "RealtimeAPI";
  api.predictor_id = ids.predictor_id;
  api.spec_id = ids.spec_id;
  api.deployment_id = "d";
  api.spec_json = Spec(1, "/iris").dump();
  return api;
}

TEST(VersionIds, PredictorChangesChangeBothIdsNetworkingOnlyTheSpecId) {
  VersionIds base = ComputeVersionIds("iris", "RealtimeAPI", Spec(1, "/iris"), "p1");
  VersionIds predictor = ComputeVersionIds("iris", "RealtimeAPI", Spec(2, "/iris"), "p1");
  VersionIds project = ComputeVersionIds("iris", "RealtimeAPI", Spec(1, "/iris"), "p2");
  VersionIds networking = ComputeVersionIds("iris", "RealtimeAPI", Spec(1, "/v2/iris"), "p1");
  EXPECT_EQ(base.predictor_id.size(), 63u);
  EXPECT_EQ(base.spec_id.size(), 32u);
  EXPECT_NE(predictor.predictor_id, base.predictor_id);
  EXPECT_NE(project.predictor_id, base.predictor_id);
  EXPECT_EQ(networking.predictor_id, base.predictor_id);
  EXPECT_NE(networking.spec_id, base.spec_id);
  EXPECT_EQ(ComputeVersionIds("iris", "RealtimeAPI", Spec(1, "/iris"), "p1").spec_id, base.spec_id);
}

TEST(DecideDeploy, UsesCortexMessages) {
  VersionIds ids = ComputeVersionIds("iris", "RealtimeAPI", Spec(1, "/iris"), "p1");
  VersionIds changed = ComputeVersionIds("iris", "RealtimeAPI", Spec(2, "/iris"), "p1");
  store::ApiRecord api = Deployed(ids);

  DeployDecision create = DecideDeploy("iris", "RealtimeAPI", ids, nullptr, false, false);
  EXPECT_EQ(create.action, Action::kCreate);
  EXPECT_EQ(create.message, "creating iris (RealtimeAPI)");

  EXPECT_EQ(DecideDeploy("iris", "RealtimeAPI", ids, &api, false, false).message,
            "iris (RealtimeAPI) is up to date");
  EXPECT_EQ(DecideDeploy("iris", "RealtimeAPI", ids, &api, true, false).message,
            "iris (RealtimeAPI) is already updating");

  DeployDecision update = DecideDeploy("iris", "RealtimeAPI", changed, &api, false, false);
  EXPECT_EQ(update.action, Action::kUpdate);
  EXPECT_EQ(update.message, "updating iris (RealtimeAPI)");

  DeployDecision busy = DecideDeploy("iris", "RealtimeAPI", changed, &api, true, false);
  EXPECT_EQ(busy.action, Action::kReject);
  EXPECT_EQ(busy.message, "iris is updating (override with --force)");
  EXPECT_EQ(DecideDeploy("iris", "RealtimeAPI", changed, &api, true, true).action, Action::kUpdate);

  DeployDecision kind = DecideDeploy("iris", "BatchAPI", changed, &api, false, false);
  EXPECT_EQ(kind.action, Action::kReject);
  EXPECT_NE(kind.message.find("cannot change the kind of iris to BatchAPI"), std::string::npos);
}

TEST(DecideDeploy, SplittersUseTheirOwnWords) {
  VersionIds ids = ComputeVersionIds("split", "TrafficSplitter", json::object(), "p1");
  VersionIds changed = ComputeVersionIds("split", "TrafficSplitter",
                                         json{{"apis", {{{"name", "a"}, {"weight", 100}}}}}, "p1");
  store::ApiRecord api;
  api.name = "split";
  api.kind = "TrafficSplitter";
  api.spec_id = ids.spec_id;
  EXPECT_EQ(DecideDeploy("split", "TrafficSplitter", ids, nullptr, false, false).message,
            "created split (TrafficSplitter)");
  EXPECT_EQ(DecideDeploy("split", "TrafficSplitter", ids, &api, true, false).message,
            "split (TrafficSplitter) is up to date");
  DeployDecision update = DecideDeploy("split", "TrafficSplitter", changed, &api, true, false);
  EXPECT_EQ(update.action, Action::kUpdate);  // no "is updating" rule for splitters
  EXPECT_EQ(update.message, "updated split (TrafficSplitter)");
}

TEST(IsUpdating, CountsOnlyUpToDateReplicas) {
  backends::ReplicaSetStatus set;
  backends::ReplicaStatus replica;
  replica.id = "r1";
  set.replicas.push_back(replica);
  backends::ReplicaStatus& r = set.replicas[0];
  r.state = ReplicaState::kStarting;
  EXPECT_TRUE(IsUpdating(1, &set));
  EXPECT_TRUE(IsUpdating(1, nullptr));  // nothing observed yet
  r.state = ReplicaState::kReady;
  EXPECT_FALSE(IsUpdating(1, &set));
  EXPECT_TRUE(IsUpdating(2, &set));
  r.state = ReplicaState::kFailed;
  EXPECT_FALSE(IsUpdating(1, &set));  // a failed replica ends "updating"
  r.state = ReplicaState::kReady;
  r.updated = false;
  EXPECT_TRUE(IsUpdating(1, &set));  // a stale ready replica does not count
}

TEST(DesiredReplicas, StartsFromInitThenKeepsTheCurrentCountWithinBounds) {
  config::AutoscalingConfig autoscaling;
  autoscaling.min_replicas = 1;
  autoscaling.max_replicas = 5;
  autoscaling.init_replicas = 2;
  EXPECT_EQ(DesiredReplicas(autoscaling, 0), 2);
  EXPECT_EQ(DesiredReplicas(autoscaling, 4), 4);
  EXPECT_EQ(DesiredReplicas(autoscaling, 9), 5);
}

}  // namespace
}  // namespace cortex::op
