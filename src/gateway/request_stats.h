// The gateway's request counts and latency per API, shared by every gateway thread: each
// thread records into it, and /metrics or /_cortex/stats on any thread reads the whole.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/histogram.h"
#include "gateway/route_table.h"

namespace cortex::gateway {

class RequestStats {
 public:
  // Counts one prediction (a POST) of `api` that answered `status` after `seconds`.
  void Record(const ApiRoute& api, unsigned status, double seconds);
  // Request counts belong to one deployment: an API deleted, updated or refreshed (another
  // metrics key) starts anew.
  void Retain(const RouteTable& routes);
  // {"<api>": {"metrics_key", "code_2xx", "code_4xx", "code_5xx", "count", "latency_sum_s",
  //            "latency_buckets": [per bucket of LatencyHistogram::kBounds, then +Inf]}}
  nlohmann::json ToJson() const;
  // cortex_requests_total and cortex_request_duration_seconds, in Prometheus's text format.
  std::string Prometheus() const;

 private:
  struct Api {
    std::string metrics_key;  // the deployment these counts belong to (ApiRoute::metrics_key)
    int64_t code_2xx = 0, code_4xx = 0, code_5xx = 0;
    LatencyHistogram latency;
  };
  mutable std::mutex mu_;
  std::map<std::string, Api> apis_;  // by API name; guarded by mu_
};

}  // namespace cortex::gateway
