#include "operator/api_status.h"

namespace cortex::op {

void ReplicaCounts::Add(ReplicaState state) {
  switch (state) {
    case ReplicaState::kStarting:
      ++initializing;
      break;
    case ReplicaState::kReady:
      ++ready;
      break;
    case ReplicaState::kFailed:
      ++failed;
      break;
    case ReplicaState::kOom:
      ++killed_oom;
      break;
    case ReplicaState::kStopping:
      ++terminating;
      break;
    case ReplicaState::kStalled:
      ++stalled;
      break;
  }
}

nlohmann::json ReplicaCounts::ToJson() const {
  return {{"pending", pending},
          {"initializing", initializing},
          {"ready", ready},
          {"err_image_pull", err_image_pull},
          {"terminating", terminating},
          {"failed", failed},
          {"killed", killed},
          {"killed_oom", killed_oom},
          {"stalled", stalled},
          {"unknown", unknown}};
}

std::string StatusCode(const ReplicaCounts& updated, int requested, int min_replicas) {
  if (updated.ready >= requested) return "status_live";
  if (updated.err_image_pull > 0) return "status_error_image_pull";
  if (updated.failed > 0 || updated.killed > 0) return "status_error";
  if (updated.killed_oom > 0) return "status_oom";
  if (updated.stalled > 0) return "status_stalled";
  if (updated.ready >= min_replicas) return "status_live";
  return "status_updating";
}

std::string StatusText(const std::string& code) {
  if (code == "status_live") return "live";
  if (code == "status_updating") return "updating";
  if (code == "status_error") return "error";
  if (code == "status_error_image_pull") return "error (image pull)";
  if (code == "status_oom") return "error (out of memory)";
  if (code == "status_stalled") return "compute unavailable";
  return "unknown";
}

}  // namespace cortex::op
