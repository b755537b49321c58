// The life cycle of one replica, as every provider reports it (spec §8 derives API statuses from
// it). kStalled: not started because the machine or cluster lacks the compute it asks for.
#pragma once

#include <optional>
#include <string_view>

namespace cortex {

enum class ReplicaState { kStarting, kReady, kFailed, kOom, kStopping, kStalled };

std::string_view ReplicaStateName(ReplicaState state);  // "starting", "ready", ...
std::optional<ReplicaState> ParseReplicaState(std::string_view name);

}  // namespace cortex
