// The operator: the control plane. Keeps the deployed APIs in the StateStore, reconciles replicas
// through the Backend, and publishes the route table the gateways follow.
//
// Thread-safe: REST handlers call the public methods from the HTTP thread while Run() drives the
// control loop on its own thread; one mutex serialises them (the control plane is not on the
// request path).
#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autoscaler/policy.h"
#include "backends/backend.h"
#include "operator/batch_jobs.h"
#include "operator/capacity.h"
#include "store/state_store.h"

namespace cortex::op {

// What the autoscaler needs to know about one RealtimeAPI.
struct AutoscaleTarget {
  std::string name;
  std::string api_id;
  int desired = 1;
  autoscaler::Settings settings;
  std::vector<std::pair<std::string, uint16_t>> ready;  // (replica id, port)
};

struct OperatorOptions {
  std::string data_dir;
  std::string provider = "local";
  std::string gateway_url;          // the API gateway listener, e.g. http://127.0.0.1:8888
  std::string lb_url;               // the load balancer listener
  bool cluster_api_gateway = true;  // false: the cluster serves APIs on the load balancer only
  std::string default_python = "/usr/bin/python3";
  int reconcile_interval_ms = 200;
  std::optional<Resources> capacity;  // default: this machine's (DetectCapacity)
};

class Operator {
 public:
  Operator(OperatorOptions options, std::unique_ptr<store::StateStore> store,
           std::unique_ptr<backends::Backend> backend);

  // Project bundles, content-addressed by the sha256 of their bytes.
  bool HasBundle(const std::string& project_id) const;
  absl::Status PutBundle(const std::string& project_id, const std::string& bytes);

  // POST /v1/deploy: {"config": yaml, "config_file_name", "project_id", "force"}.
  // Returns [DeployResult{api, message, error}]; a validation error fails the whole request.
  absl::StatusOr<nlohmann::json> Deploy(const nlohmann::json& request);
  // POST /v1/patch: {"config", "config_file_name", "force"}: a deploy of new configuration
  // against the project already uploaded for those APIs (which must all be deployed).
  absl::StatusOr<nlohmann::json> Patch(const nlohmann::json& request);
  // POST /v1/apis/<name>/refresh: replaces every replica (a rolling update) with a new
  // deployment id; refused while the API is updating unless `force`.
  absl::StatusOr<nlohmann::json> Refresh(const std::string& name, bool force);
  absl::StatusOr<nlohmann::json> ListApis();
  absl::StatusOr<nlohmann::json> GetApi(const std::string& name);
  absl::StatusOr<nlohmann::json> DeleteApi(const std::string& name);
  // Bytes of the API's log from `offset` (at most `max_bytes`) and the offset to ask for next.
  // `job_id` non-empty: that batch job's log (its workers and the operator's notes).
  absl::StatusOr<std::pair<std::string, int64_t>> ReadLogs(const std::string& name,
                                                           const std::string& job_id,
                                                           int64_t offset, int64_t max_bytes);

  // The current route table ({"version", "apis": [...]}) and its version.
  nlohmann::json Routes() const;
  int64_t routes_version() const { return routes_version_.load(); }
  // Called (from the control-loop thread) whenever the route table changes.
  void OnRoutesChanged(std::function<void()> callback) { on_routes_changed_ = std::move(callback); }

  // Batch jobs (BatchAPI): enabled with the job queue they keep their state in.
  void EnableBatchJobs(BatchOptions options, std::unique_ptr<store::JobQueue> queue);
  // POST/GET/DELETE on a BatchAPI's endpoint (the gateway forwards them; spec §11).
  // `job_id` may be empty (then ?jobID= is used for GET and DELETE).
  absl::StatusOr<nlohmann::json> JobEndpoint(const std::string& method, const std::string& api,
                                             const std::string& job_id, const std::string& body,
                                             bool dry_run, std::string* text);
  // The worker protocol (POST /v1/jobs/<job>/<action>).
  absl::StatusOr<nlohmann::json> WorkerCall(const std::string& job_id, const std::string& action,
                                            const nlohmann::json& body);

  // Every RealtimeAPI with its autoscaling settings and ready replicas.
  std::vector<AutoscaleTarget> AutoscaleTargets();
  // Sets the API's replica count (an autoscaling event), unless it was redeployed meanwhile.
  void SetDesiredReplicas(const std::string& name, const std::string& api_id, int from, int to);

  // Prometheus text: requested and ready replicas per API.
  std::string MetricsText();

  // The control loop; returns when `stop` becomes true.
  void Run(const std::atomic<bool>& stop);
  void ReconcileOnce();
  // Stops every replica (cluster down). APIs stay stored and come back at the next start.
  void StopAllReplicas();

 private:
  // Requires mu_. Replicas to stop go to `to_stop` (stopped once mu_ is released).
  void ReconcileLocked(std::vector<store::ReplicaRecord>& to_stop);
  // Removes every trace of a stopped replica (record, GPUs, spec file). Requires mu_.
  void Forget(const store::ReplicaRecord& replica);
  absl::StatusOr<nlohmann::json> DescribeOne(const std::string& name, const nlohmann::json& stats,
                                             std::vector<uint16_t>& ready_ports);  // requires mu_
  absl::StatusOr<std::string> ProjectDir(const std::string& project_id);
  void AppendApiLog(const std::string& api, const std::string& line);
  // Starts `replica`, or leaves it stalled when the machine cannot fit it beside `used`.
  absl::Status StartReplica(store::ReplicaRecord& replica, const store::ApiRecord& api,
                            const Resources& used, int64_t now_ms);
  Resources ApiResources(const store::ApiRecord& api) const;
  Resources UsedResources(const std::map<std::string, store::ApiRecord>& apis,
                          const std::map<std::string, store::ReplicaRecord>& replicas,
                          const std::string& except) const;
  nlohmann::json Describe(const store::ApiRecord& api,
                          const std::vector<store::ReplicaRecord>& replicas,
                          const nlohmann::json& stats);
  nlohmann::json GatewayStats();

  OperatorOptions options_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<backends::Backend> backend_;
  mutable std::mutex mu_;
  nlohmann::json routes_;  // guarded by mu_
  std::atomic<int64_t> routes_version_{0};
  std::function<void()> on_routes_changed_;
  Resources capacity_;
  std::map<std::string, std::vector<int>> gpu_assignments_;  // by replica id; guarded by mu_
  std::unique_ptr<BatchJobs> batch_;                         // set once, before Run()
};

}  // namespace cortex::op
