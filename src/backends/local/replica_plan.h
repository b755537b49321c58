// Pure decisions of the local provider's replica controller: which replicas to start, restart and
// stop for one replica set (scaling and rolling updates, as a Kubernetes Deployment would).
// No I/O; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/replica_state.h"

namespace cortex::backends::local {

struct ReplicaView {
  std::string id;
  bool updated = true;  // runs the API's current predictor_id and deployment_id
  ReplicaState state = ReplicaState::kStarting;
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

}  // namespace cortex::backends::local
