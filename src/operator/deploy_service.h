// The writers of desired state: `cortex deploy`, `patch`, `refresh`, `delete`, and the
// autoscaler's replica counts. Each call validates everything first, then writes the API
// records (the reconciler makes the replicas follow). Thread-safe: one mutex serialises the
// writers (check-then-write); none of them waits for a replica, a probe or another server.
#pragma once

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "models/model_store.h"
#include "operator/api_logs.h"
#include "operator/api_spec.h"
#include "operator/bundle_store.h"
#include "operator/reconciler.h"
#include "store/state_store.h"

namespace cortex::op {

class JobService;

struct DeployOptions {
  std::string provider = "local";
  bool cluster_api_gateway = true;  // false: the cluster serves APIs on the load balancer only
  int max_replicas = 1000;          // per API (limits: replicas_per_api)
  uint64_t max_config_bytes = 1ull << 20;
};

class DeployService {
 public:
  DeployService(DeployOptions options, store::StateStore& store, SpecCache& specs,
                BundleStore& bundles, const ApiLogs& logs, const Reconciler& reconciler,
                const Clock& clock);
  // Batch jobs, when this operator runs them (BatchAPIs are refused otherwise).
  void EnableBatchJobs(JobService* jobs) { jobs_ = jobs; }
  // Where models are read at deploy time to check their layout (APIs with models are refused
  // otherwise).
  void EnableModels(const models::ModelStore* store) { model_store_ = store; }

  // POST /v1/deploy: {"config": yaml, "config_file_name", "project_id", "force"}.
  // Returns [DeployResult{api, message, error}]; a validation error fails the whole request.
  absl::StatusOr<nlohmann::json> Deploy(const nlohmann::json& request);
  // POST /v1/patch: a deploy of new configuration against the project already uploaded for
  // those APIs (which must all be deployed).
  absl::StatusOr<nlohmann::json> Patch(const nlohmann::json& request);
  // POST /v1/apis/<name>/refresh: a new deployment id, which rolls every replica.
  absl::StatusOr<nlohmann::json> Refresh(const std::string& name, bool force);
  absl::StatusOr<nlohmann::json> Delete(const std::string& name);
  // An autoscaling event; ignored when the API was redeployed meanwhile (another api_id).
  void SetDesiredReplicas(const std::string& name, const std::string& api_id, int from, int to);

 private:
  absl::StatusOr<nlohmann::json> DeployLocked(const nlohmann::json& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Updating(const ApiSpec& api) const;

  const DeployOptions options_;
  store::StateStore& store_;
  SpecCache& specs_;
  BundleStore& bundles_;
  const ApiLogs& logs_;
  const Reconciler& reconciler_;
  const Clock& clock_;
  JobService* jobs_ = nullptr;                       // set once, before serving
  const models::ModelStore* model_store_ = nullptr;  // set once, before serving
  absl::Mutex mu_;
};

}  // namespace cortex::op
