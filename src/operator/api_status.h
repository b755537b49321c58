// An API's status from its replicas' states (spec §8): the counts `cortex get` shows and Cortex's
// status codes. Pure; thread-compatible.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/replica_state.h"

namespace cortex::op {

struct ReplicaCounts {
  int pending = 0, initializing = 0, ready = 0, err_image_pull = 0, terminating = 0, failed = 0,
      killed = 0, killed_oom = 0, stalled = 0, unknown = 0;
  int TotalFailed() const { return failed + err_image_pull + killed + killed_oom + stalled; }
  void Add(ReplicaState state);
  nlohmann::json ToJson() const;
};

// "status_live", "status_error", "status_oom", "status_stalled", "status_updating", ...
std::string StatusCode(const ReplicaCounts& updated, int requested, int min_replicas);
// The CLI text for a status code: "live", "error (out of memory)", "compute unavailable", ...
std::string StatusText(const std::string& code);

}  // namespace cortex::op
