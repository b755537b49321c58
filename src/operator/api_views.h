// The documents `cortex get` and `cortex logs` read: every API with its status (from the
// reconciler's last observation), request metrics (from the gateway, matched to the API's
// current deployment), prediction monitoring (from the ready replicas), versions, jobs, and the
// log files. Thread-safe. Calls other servers and reads files: call it off the I/O thread.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "operator/api_logs.h"
#include "operator/api_spec.h"
#include "operator/autoscaling.h"
#include "operator/job_service.h"
#include "operator/reconciler.h"
#include "operator/traffic_history.h"
#include "store/state_store.h"

namespace cortex::op {

struct ViewOptions {
  std::string gateway_url;  // the API gateway listener, e.g. http://127.0.0.1:8888
  std::string lb_url;       // the load balancer listener
};

class ApiViews {
 public:
  ApiViews(ViewOptions options, store::StateStore& store, SpecCache& specs,
           const Reconciler& reconciler, const ApiLogs& logs);
  void EnableBatchJobs(JobService* jobs) { jobs_ = jobs; }
  void EnableAutoscaling(const Autoscaling* autoscaling) { autoscaling_ = autoscaling; }

  // One snapshot of the gateway's request counters into the traffic history (every few seconds).
  void SampleTraffic(int64_t now_ms);
  // GET /v1/apis/{api}/history: {"api", "requests": TrafficHistory::Series, "in_flight" and
  // "decisions": Autoscaling::History (empty lists without an autoscaler), "replicas": the
  // current {"ready", "requested"}}, over the last 10 minutes.
  absl::StatusOr<nlohmann::json> History(const std::string& name);

  absl::StatusOr<nlohmann::json> List();
  absl::StatusOr<nlohmann::json> Get(const std::string& name);
  // Deploy or patch results ({api: {name, kind}, message, error}) as v0.24's DeployResult: each
  // deployed API's `api` gets its description (spec, status, endpoint, ...) next to name and kind.
  absl::StatusOr<nlohmann::json> WithDescriptions(nlohmann::json results);
  // Bytes of the API's log (or, `job_id` given, that job's) from `offset`, and the next offset.
  absl::StatusOr<std::pair<std::string, int64_t>> Logs(const std::string& name,
                                                       const std::string& job_id, int64_t offset,
                                                       int64_t max_bytes);
  // Prometheus text: requested and ready replicas per API.
  std::string MetricsText();

  const ViewOptions& options() const { return options_; }

 private:
  nlohmann::json Describe(const ApiSpec& api, const Observed& observed,
                          const nlohmann::json& gateway_stats);
  nlohmann::json GatewayStats() const;

  const ViewOptions options_;
  store::StateStore& store_;
  SpecCache& specs_;
  const Reconciler& reconciler_;
  const ApiLogs& logs_;
  JobService* jobs_ = nullptr;
  const Autoscaling* autoscaling_ = nullptr;
  TrafficHistory traffic_;
};

}  // namespace cortex::op
