// Cortex's realtime autoscaling algorithm (spec §7) as a pure function of the API's settings,
// its in-flight history and the time. The operator feeds it 1 s samples instead of CloudWatch's
// 10 s buckets, so it reacts within one window. Thread-compatible; no I/O, no clock.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "config/defaults.h"

namespace cortex::autoscaler {

struct Settings {
  int min_replicas = config::kDefaultMinReplicas;
  int max_replicas = config::kDefaultMaxReplicas;
  double target_replica_concurrency = 1;
  int64_t window_ms = config::kDefaultWindowS * 1000;
  int64_t downscale_stabilization_period_ms = config::kDefaultDownscaleStabilizationS * 1000;
  int64_t upscale_stabilization_period_ms = config::kDefaultUpscaleStabilizationS * 1000;
  double max_downscale_factor = config::kDefaultMaxDownscaleFactor;
  double max_upscale_factor = config::kDefaultMaxUpscaleFactor;
  double downscale_tolerance = config::kDefaultDownscaleTolerance;
  double upscale_tolerance = config::kDefaultUpscaleTolerance;
};

// One sample: the API's total in-flight requests (queued + running, summed over its ready
// replicas) at `time_ms`.
struct Sample {
  int64_t time_ms = 0;
  double in_flight = 0;
};

// The autoscaler's memory for one API: when it started (a (re)deploy or an operator restart
// starts it afresh), its current request, and its past recommendations.
struct State {
  std::optional<int64_t> start_ms;
  int current = 1;  // the autoscaler's own last request, not the number of ready replicas
  std::deque<std::pair<int64_t, int>> recommendations;  // (time_ms, replicas), oldest first
};

struct Decision {
  bool has_data = false;     // false: no samples in the window ("metrics not available yet")
  double avg_in_flight = 0;  // average over the window
  int recommendation = 0;    // after tolerances, factor clamps and min/max
  int request = 0;           // after the stabilization periods: the replicas to run
};

// One tick at `now_ms`: averages the samples in (now - window, now], computes the
// recommendation and the stabilized request, and updates `state` (history, current).
Decision Tick(const Settings& settings, const std::vector<Sample>& samples, int64_t now_ms,
              State& state);

}  // namespace cortex::autoscaler
