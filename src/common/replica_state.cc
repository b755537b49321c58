#include "common/replica_state.h"

namespace cortex {

std::string_view ReplicaStateName(ReplicaState state) {
  switch (state) {
    case ReplicaState::kStarting:
      return "starting";
    case ReplicaState::kReady:
      return "ready";
    case ReplicaState::kFailed:
      return "failed";
    case ReplicaState::kOom:
      return "oom";
    case ReplicaState::kStopping:
      return "stopping";
    case ReplicaState::kStalled:
      return "stalled";
  }
  return "starting";
}

std::optional<ReplicaState> ParseReplicaState(std::string_view name) {
  for (auto s : {ReplicaState::kStarting, ReplicaState::kReady, ReplicaState::kFailed,
                 ReplicaState::kOom, ReplicaState::kStopping, ReplicaState::kStalled}) {
    if (ReplicaStateName(s) == name) return s;
  }
  return std::nullopt;
}

}  // namespace cortex
