// Pure decisions of `cortex deploy` for one API (spec §1): the version ids that tell which
// changes roll replicas, whether the API is "updating", and the Cortex outcome message.
// Thread-compatible; no I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "config/api_config.h"
#include "store/state_store.h"

namespace cortex::op {

struct VersionIds {
  // Changes with the predictor, compute, monitoring, max_replica_concurrency or project files:
  // replicas are replaced.
  std::string predictor_id;
  // Also changes with networking, autoscaling and update_strategy: the API is re-tuned.
  std::string spec_id;
};

// `spec` is the defaulted configuration (ApiConfig::ToJson).
VersionIds ComputeVersionIds(const std::string& name, const std::string& kind,
                             const nlohmann::json& spec, const std::string& project_id);

// Cortex's "updating": fewer up-to-date replicas ready than min_replicas, and none failed.
// `replicas` is the API's last observation (null: none yet).
bool IsUpdating(int min_replicas, const backends::ReplicaSetStatus* replicas);

struct DeployDecision {
  enum class Action { kCreate, kUpdate, kNone, kReject } action = Action::kNone;
  std::string message;  // what the CLI prints; for kReject, the error
};

// `existing` is null on first deploy.
DeployDecision DecideDeploy(const std::string& name, const std::string& kind, const VersionIds& ids,
                            const store::ApiRecord* existing, bool updating, bool force);

// Replicas to run after a deploy: the current count when there is one, else init_replicas;
// clamped to [min_replicas, max_replicas].
int DesiredReplicas(const config::AutoscalingConfig& autoscaling, int current);

}  // namespace cortex::op
