// The operator's autoscaling loop: scrapes every ready replica's per-second in-flight averages
// (GET /_cortex/in_flight on the front) once a second, keeps a per-API series, and every tick
// applies the Cortex policy (autoscaler/policy.h) and sets the API's desired replicas.
//
// Thread-safe: Run() is the loop's thread; MetricsText() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "autoscaler/policy.h"
#include "operator/operator.h"

namespace cortex::op {

class Autoscaling {
 public:
  Autoscaling(Operator& op, int64_t tick_ms) : op_(op), tick_ms_(tick_ms) {}

  void Run(const std::atomic<bool>& stop);
  // One scrape of every API's ready replicas, and a policy tick for the APIs whose tick is due.
  void Step(int64_t now_ms);
  // Prometheus text: in-flight, desired and recommended replicas per API.
  std::string MetricsText() const;

 private:
  struct ApiSeries {
    std::string api_id;                      // a new id (deploy, refresh) restarts the policy
    std::map<int64_t, double> per_second;    // second (unix s) -> in-flight summed over replicas
    std::map<std::string, int64_t> seen_ms;  // replica id -> newest sample taken
    autoscaler::State state;
    int64_t next_tick_ms = 0;
    autoscaler::Decision last;
  };

  Operator& op_;
  const int64_t tick_ms_;
  mutable std::mutex mu_;
  std::map<std::string, ApiSeries> series_;  // guarded by mu_
};

}  // namespace cortex::op
