#include "backends/local/replica_plan.h"

#include <algorithm>
#include <cstdlib>

namespace cortex::backends::local {

int64_t RestartBackoffMs(int restarts) {
  int64_t ms = 1000;
  for (int i = 1; i < restarts && ms < 30'000; ++i) ms *= 2;
  return std::min<int64_t>(ms, 30'000);
}

namespace {

// "25%" of `total` (rounded up or down) or a plain number.
int ResolveQuantity(const std::string& text, int total, bool round_up) {
  if (!text.empty() && text.back() == '%') {
    int percent = std::atoi(text.substr(0, text.size() - 1).c_str());
    int64_t scaled = static_cast<int64_t>(percent) * total;
    return static_cast<int>(round_up ? (scaled + 99) / 100 : scaled / 100);
  }
  return std::max(0, std::atoi(text.c_str()));
}

}  // namespace

RolloutLimits ResolveRollout(const std::string& max_surge, const std::string& max_unavailable,
                             int desired) {
  RolloutLimits limits{ResolveQuantity(max_surge, desired, true),
                       ResolveQuantity(max_unavailable, desired, false)};
  // As Kubernetes: a rollout must be able to make progress.
  if (limits.max_surge == 0 && limits.max_unavailable == 0) limits.max_unavailable = 1;
  return limits;
}

ReplicaPlan PlanReplicas(int desired, const RolloutLimits& limits,
                         const std::vector<ReplicaView>& replicas, int64_t now_ms) {
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
  int updated_ready = 0;
  for (const auto* r : updated) {
    if (r->state == ReplicaState::kReady) ++updated_ready;
    if ((r->state == ReplicaState::kFailed || r->state == ReplicaState::kOom ||
         r->state == ReplicaState::kStalled) &&
        r->next_start_at_ms <= now_ms) {
      plan.restart.push_back(r->id);
    }
  }
  int missing = std::max(0, desired - static_cast<int>(updated.size()));
  if (stale.empty()) {
    plan.start = missing;
    return plan;
  }

  // A rolling update (Kubernetes semantics): at most desired + max_surge replicas exist, and at
  // least desired - max_unavailable are ready, counting old and new alike.
  int stale_ready = 0;
  for (const auto* r : stale) stale_ready += r->state == ReplicaState::kReady;
  if (stale_ready == 0 || updated_ready >= desired) {
    // Nothing old is serving (a version that never became ready is replaced, not rolled), or
    // the new version is fully up: the old replicas go.
    for (const auto* r : stale) plan.stop.push_back(r->id);
    plan.start = missing;
    return plan;
  }
  int stoppable = updated_ready + stale_ready - (desired - limits.max_unavailable);
  int remaining = static_cast<int>(stale.size());
  for (const auto* r : stale) {
    if (r->state != ReplicaState::kReady) {  // not serving: no availability is lost
      plan.stop.push_back(r->id);
      --remaining;
    } else if (stoppable > 0) {
      plan.stop.push_back(r->id);
      --stoppable;
      --remaining;
    }
  }
  int room = desired + limits.max_surge - (static_cast<int>(updated.size()) + remaining);
  plan.start = std::clamp(room, 0, missing);
  return plan;
}

}  // namespace cortex::backends::local
