// Pure decisions of the operator's control loop: which replicas to start, restart and stop for
// one API, and the API's status from its replicas (spec §8). No I/O; thread-compatible.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/state_store.h"

namespace cortex::op {

struct ReplicaView {
  std::string id;
  bool updated = true;  // runs the API's current predictor_id and deployment_id
  store::ReplicaState state = store::ReplicaState::kStarting;
  int64_t next_start_at_ms = 0;
};

struct ReplicaPlan {
  int start = 0;                     // new replicas of the current version
  std::vector<std::string> restart;  // failed or stalled replicas whose back-off has passed
  std::vector<std::string> stop;     // surplus, or stale replicas no longer needed
};

// update_strategy resolved against the desired replica count: max_surge percentages round up,
// max_unavailable percentages round down, and both zero means max_unavailable 1.
struct RolloutLimits {
  int max_surge = 0;
  int max_unavailable = 0;
};
RolloutLimits ResolveRollout(const std::string& max_surge, const std::string& max_unavailable,
                             int desired);

// Scaling and rolling updates. With stale replicas (an older version) present, at most
// desired + max_surge replicas exist and at least desired - max_unavailable stay ready; stale
// replicas that are not serving stop at once (a version that never became ready is replaced
// rather than rolled).
ReplicaPlan PlanReplicas(int desired, const RolloutLimits& limits,
                         const std::vector<ReplicaView>& replicas, int64_t now_ms);

// Back-off before restarting a replica that failed `restarts` times: 1 s doubling to 30 s.
int64_t RestartBackoffMs(int restarts);

struct ReplicaCounts {
  int pending = 0, initializing = 0, ready = 0, err_image_pull = 0, terminating = 0, failed = 0,
      killed = 0, killed_oom = 0, stalled = 0, unknown = 0;
  int TotalFailed() const { return failed + err_image_pull + killed + killed_oom + stalled; }
  void Add(store::ReplicaState state);
  nlohmann::json ToJson() const;
};

// "status_live", "status_error", "status_oom", "status_stalled", "status_updating", ...
std::string StatusCode(const ReplicaCounts& updated, int requested, int min_replicas);
// The CLI text for a status code: "live", "error (out of memory)", "compute unavailable", ...
std::string StatusText(const std::string& code);

}  // namespace cortex::op
