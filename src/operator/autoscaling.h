// The operator's autoscaling loop: scrapes every ready replica's per-second in-flight averages
// (GET /_cortex/in_flight on the front) once a second, keeps a per-API series, and every tick
// applies the Cortex policy (autoscaler/policy.h) and sets the API's desired replicas.
//
// Thread-safe: Run() is the loop's thread; MetricsText() may be called from any thread.
#pragma once

#include <absl/synchronization/mutex.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autoscaler/policy.h"
#include "backends/backend.h"
#include "operator/api_spec.h"
#include "operator/reconciler.h"

namespace cortex::op {

// What the autoscaler needs to know about one RealtimeAPI.
struct AutoscaleTarget {
  std::string name;
  std::string api_id;
  int desired = 1;
  autoscaler::Settings settings;
  std::vector<std::pair<std::string, backends::Endpoint>> ready;  // (replica id, its front)
};

// Every RealtimeAPI of `apis` with its ready replicas in `observed`.
std::vector<AutoscaleTarget> AutoscaleTargets(const std::vector<ApiSpecPtr>& apis,
                                              const Observed& observed);

class Autoscaling {
 public:
  using Targets = std::function<std::vector<AutoscaleTarget>()>;
  // An autoscaling event: (api, api_id, from, to).
  using SetDesired = std::function<void(const std::string&, const std::string&, int, int)>;
  Autoscaling(Targets targets, SetDesired set_desired, int64_t tick_ms)
      : targets_(std::move(targets)), set_desired_(std::move(set_desired)), tick_ms_(tick_ms) {}

  void Run(const std::atomic<bool>& stop);
  // One scrape of every API's ready replicas, and a policy tick for the APIs whose tick is due.
  void Step(int64_t now_ms);
  // Prometheus text: in-flight, desired and recommended replicas per API.
  std::string MetricsText() const;
  // The API's recent autoscaling, for the dashboard: {"in_flight": [[unix s, in-flight summed
  // over replicas], ...] for the seconds after `since_s`, "decisions": [{"time" (unix ms),
  // "avg_in_flight", "recommendation", "from", "to"}, ...] (the last kMaxDecisions ticks that had
  // data, oldest first)}. Empty lists for an API it does not know.
  nlohmann::json History(const std::string& api, int64_t since_s) const;

  static constexpr size_t kMaxDecisions = 100;

 private:
  struct ApiSeries {
    std::string api_id;                      // a new id (deploy, refresh) restarts the policy
    std::map<int64_t, double> per_second;    // second (unix s) -> in-flight summed over replicas
    std::map<std::string, int64_t> seen_ms;  // replica id -> newest sample taken
    autoscaler::State state;
    int64_t next_tick_ms = 0;
    autoscaler::Decision last;
    std::deque<nlohmann::json> decisions;  // newest last, at most kMaxDecisions
  };

  const Targets targets_;
  const SetDesired set_desired_;
  const int64_t tick_ms_;
  mutable absl::Mutex mu_;
  std::map<std::string, ApiSeries> series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cortex::op
