// What one replica front counts: responses by class, rejections, latency and queue time, and
// prediction monitoring (spec §10: class counts or regression stats from the workers' "monitor"
// values). Served as Prometheus text at /metrics and as JSON at /_cortex/stats.
// Single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/histogram.h"

namespace cortex::replica {

class FrontMetrics {
 public:
  FrontMetrics(std::string api, std::string replica_id)
      : api_(std::move(api)), replica_id_(std::move(replica_id)) {}

  void Response(unsigned status, double seconds);
  void Rejected() {  // a 503 past max_replica_concurrency (counted as a 5XX response too)
    ++rejected_;
    ++responses_5xx_;
  }
  // A queued request whose client left before a slot was free: not run (its 499 counts as 4XX).
  void Abandoned() { ++abandoned_; }
  void Queued(double seconds) { queue_time_.Observe(seconds); }
  void Batch(size_t size);  // a batch of `size` requests went to a slot (server-side batching)
  void Monitored(const nlohmann::json& value);

  // `in_flight`, `queued`, `running`: the front's gauges at this moment.
  nlohmann::json Stats(int64_t in_flight, int64_t queued, int64_t running) const;
  std::string Prometheus(int64_t in_flight, int64_t queued) const;
  // The model registries' counters, summed over the worker processes' reports (the JSON each
  // writes beside the models manifest: hits, misses, evictions, loads, load_failures, loaded,
  // resident_bytes). Empty without reports.
  std::string ModelsPrometheus(const std::vector<nlohmann::json>& reports) const;

 private:
  const std::string api_;
  const std::string replica_id_;
  int64_t responses_2xx_ = 0, responses_4xx_ = 0, responses_5xx_ = 0, rejected_ = 0, abandoned_ = 0;
  LatencyHistogram latency_;     // admission to response
  LatencyHistogram queue_time_;  // admission to a free slot
  std::map<std::string, int64_t> class_counts_;
  std::vector<int64_t> batch_sizes_;  // per bucket of kBatchSizeBuckets, plus +Inf
  int64_t batches_ = 0, batched_requests_ = 0;
  double regression_min_ = 0, regression_max_ = 0, regression_sum_ = 0;
  int64_t regression_count_ = 0;
};

}  // namespace cortex::replica
