#include "operator/deploy_plan.h"

#include <absl/strings/str_cat.h>

#include <algorithm>

#include "common/util.h"

namespace cortex::op {

using nlohmann::json;

VersionIds ComputeVersionIds(const std::string& name, const std::string& kind, const json& spec,
                             const std::string& project_id) {
  auto field = [&](const char* key) { return spec.contains(key) ? spec[key] : json(); };
  VersionIds ids;
  ids.predictor_id =
      Sha256Hex(json{{"name", name},
                     {"kind", kind},
                     {"predictor", field("predictor")},
                     {"monitoring", field("monitoring")},
                     {"project_id", project_id},
                     {"compute", field("compute")},
                     // The front enforces it, so a change restarts replicas.
                     {"max_replica_concurrency",
                      spec.contains("autoscaling") && spec["autoscaling"].is_object()
                          ? spec["autoscaling"].value("max_replica_concurrency", json())
                          : json()}}
                    .dump())
          .substr(0, 63);
  ids.spec_id = Sha256Hex(json{{"predictor_id", ids.predictor_id},
                               {"networking", field("networking")},
                               {"autoscaling", field("autoscaling")},
                               {"update_strategy", field("update_strategy")},
                               {"apis", field("apis")}}
                              .dump())
                    .substr(0, 32);
  return ids;
}

bool IsUpdating(int min_replicas, const backends::ReplicaSetStatus* replicas) {
  int ready = 0, failed = 0;
  for (const auto& r : replicas ? replicas->replicas : std::vector<backends::ReplicaStatus>{}) {
    if (!r.updated) continue;
    ready += r.state == ReplicaState::kReady;
    failed += r.state == ReplicaState::kFailed || r.state == ReplicaState::kOom;
  }
  return ready < min_replicas && failed == 0;
}

DeployDecision DecideDeploy(const std::string& name, const std::string& kind, const VersionIds& ids,
                            const store::ApiRecord* existing, bool updating, bool force) {
  using Action = DeployDecision::Action;
  std::string label = absl::StrCat(name, " (", kind, ")");
  // BatchAPI and TrafficSplitter have no "updating" state and other wording (spec §1).
  bool realtime = kind == "RealtimeAPI";
  if (existing != nullptr && existing->kind != kind) {
    return {Action::kReject,
            absl::StrCat("cannot change the kind of ", name, " to ", kind,
                         " because it has already been deployed with kind ", existing->kind,
                         "; please delete it with `cortex delete ", name, "` and redeploy")};
  }
  if (existing == nullptr) {
    return {Action::kCreate, absl::StrCat(realtime ? "creating " : "created ", label)};
  }
  if (existing->spec_id == ids.spec_id) {
    return {Action::kNone, realtime && updating ? absl::StrCat(label, " is already updating")
                                                : absl::StrCat(label, " is up to date")};
  }
  if (realtime && updating && !force) {
    return {Action::kReject, absl::StrCat(name, " is updating (override with --force)")};
  }
  return {Action::kUpdate, absl::StrCat(realtime ? "updating " : "updated ", label)};
}

int DesiredReplicas(const config::AutoscalingConfig& autoscaling, int current) {
  int desired = current > 0 ? current : autoscaling.init_replicas;
  return std::clamp(desired, autoscaling.min_replicas, autoscaling.max_replicas);
}

}  // namespace cortex::op
