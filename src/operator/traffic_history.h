// The last minutes of each API's traffic, for the dashboard: snapshots of the gateway's request
// counters (/_cortex/stats) taken every few seconds, and per interval the request rate, the
// responses by class and the p50/p99 latency (from the latency histogram's deltas).
//
// Thread-safe.
#pragma once

#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/histogram.h"

namespace cortex::op {

class TrafficHistory {
 public:
  explicit TrafficHistory(int64_t window_ms = 10 * 60 * 1000) : window_ms_(window_ms) {}

  // One snapshot of the gateway's stats ({"<api>": {"metrics_key", "code_2xx", ...,
  // "latency_buckets"}}) taken at `now_ms`. APIs missing from it are forgotten.
  void Record(int64_t now_ms, const nlohmann::json& gateway_stats);

  // The API's intervals, oldest first: [{"time" (unix ms, the interval's end), "seconds",
  // "requests_per_second", "code_2xx", "code_4xx", "code_5xx", "p50_ms", "p99_ms" (null
  // without requests)}]. Counters that restart (a new deployment, a gateway restart) start a
  // new series: that interval is left out.
  nlohmann::json Series(const std::string& api) const;

 private:
  struct Snapshot {
    int64_t time_ms = 0;
    std::string metrics_key;
    int64_t code_2xx = 0, code_4xx = 0, code_5xx = 0;
    LatencyHistogram::Buckets buckets{};
  };

  const int64_t window_ms_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::deque<Snapshot>> apis_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cortex::op
