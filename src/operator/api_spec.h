// A deployed API as the control plane uses it: the stored record with its configuration decoded
// once into a shared, immutable ApiConfig. Everything after `cortex deploy` (reconciler, views,
// autoscaler, batch jobs) reads the typed snapshot; nothing parses the stored JSON by key.
#pragma once

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autoscaler/policy.h"
#include "config/api_config.h"
#include "store/state_store.h"

namespace cortex::op {

struct ApiSpec {
  store::ApiRecord record;
  std::shared_ptr<const config::ApiConfig> config;
  std::string project_dir;  // the extracted project the replicas run in

  const std::string& name() const { return record.name; }
  config::Kind kind() const { return config->kind; }
  // Request metrics belong to one deployment (spec §10): a new one starts them from zero.
  std::string metrics_key() const { return record.predictor_id + "-" + record.deployment_id; }
};
using ApiSpecPtr = std::shared_ptr<const ApiSpec>;

// What the stored record holds: the defaulted configuration plus where its project is.
std::string EncodeSpec(const config::ApiConfig& api, const std::string& project_dir);

// Decodes records, each api_id once (a record changes its api_id whenever its configuration
// does; the autoscaler's replica counts change the record only). Thread-safe.
class SpecCache {
 public:
  absl::StatusOr<ApiSpecPtr> Decode(const store::ApiRecord& record);
  // Every API of the store, decoded; one that cannot be decoded is reported and left out.
  absl::StatusOr<std::vector<ApiSpecPtr>> List(store::StateStore& store);
  absl::StatusOr<std::optional<ApiSpecPtr>> Find(store::StateStore& store, const std::string& name);

 private:
  struct Decoded {
    std::shared_ptr<const config::ApiConfig> config;
    std::string project_dir;
  };
  absl::Mutex mu_;
  std::map<std::string, Decoded> by_api_id_ ABSL_GUARDED_BY(mu_);
};

// The autoscaler's settings from the API's autoscaling section.
autoscaler::Settings AutoscalerSettings(const config::AutoscalingConfig& autoscaling);

// The interpreter of the API's Python runtime: predictor.python, else `fallback`.
std::string PythonFor(const config::ApiConfig& api, const std::string& fallback);

// Where users call the API: the API gateway listener, or the load balancer for
// `api_gateway: none`.
std::string EndpointUrl(const config::ApiConfig& api, const std::string& gateway_url,
                        const std::string& lb_url);

}  // namespace cortex::op
