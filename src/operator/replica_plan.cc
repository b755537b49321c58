#include "operator/replica_plan.h"

#include <algorithm>

namespace cortex::op {

using store::ReplicaState;

int64_t RestartBackoffMs(int restarts) {
  int64_t ms = 1000;
  for (int i = 1; i < restarts && ms < 30'000; ++i) ms *= 2;
  return std::min<int64_t>(ms, 30'000);
}

ReplicaPlan PlanReplicas(int desired, const std::vector<ReplicaView>& replicas, int64_t now_ms) {
  ReplicaPlan plan;
  std::vector<const ReplicaView*> updated, stale;
  for (const auto& r : replicas) {
    if (r.state == ReplicaState::kStopping) continue;
    (r.updated ? updated : stale).push_back(&r);
  }
  // Surplus updated replicas: drop the least useful first (failed, then starting, then ready).
  if (static_cast<int>(updated.size()) > desired) {
    auto rank = [](const ReplicaView* r) {
      switch (r->state) {
        case ReplicaState::kFailed:
        case ReplicaState::kOom:
        case ReplicaState::kStalled:
          return 0;
        case ReplicaState::kStarting:
          return 1;
        default:
          return 2;
      }
    };
    std::stable_sort(updated.begin(), updated.end(),
                     [&](auto* a, auto* b) { return rank(a) < rank(b); });
    while (static_cast<int>(updated.size()) > desired) {
      plan.stop.push_back(updated.front()->id);
      updated.erase(updated.begin());
    }
  }
  plan.start = std::max(0, desired - static_cast<int>(updated.size()));
  int updated_ready = 0;
  for (const auto* r : updated) {
    if (r->state == ReplicaState::kReady) ++updated_ready;
    if ((r->state == ReplicaState::kFailed || r->state == ReplicaState::kOom ||
         r->state == ReplicaState::kStalled) &&
        r->next_start_at_ms <= now_ms) {
      plan.restart.push_back(r->id);
    }
  }
  bool stale_serving = std::any_of(stale.begin(), stale.end(),
                                   [](auto* r) { return r->state == ReplicaState::kReady; });
  for (const auto* r : stale) {
    if (updated_ready >= desired || !stale_serving || r->state != ReplicaState::kReady) {
      plan.stop.push_back(r->id);
    }
  }
  return plan;
}

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
