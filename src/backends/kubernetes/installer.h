// `cortex cluster up | down | info --provider kubernetes` against a cluster (docs/kubernetes.md):
// applying the installation (install_manifests.h) through the port, observing it, and removing
// it with the APIs it runs. The CLI's side; the operator never calls these.
#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/kubernetes/kube_api.h"
#include "config/kubernetes_config.h"

namespace cortex::backends::kubernetes {

// The operator's token in an installation's Secret; NotFound when nothing is installed.
// `cluster up` keeps it, so that the environments already pointing at the operator go on working.
absl::StatusOr<std::string> InstalledToken(KubeApi& api);

// Applies `objects` (InstallObjects' order) one by one, each reported through `progress`
// ("created Deployment cortex-operator", "unchanged ..."): the namespace is created when
// missing; the volume claim is kept once made (its spec is immutable); every other object is
// applied as the backend applies an API's (apply.h), so running it again changes only what
// differs. Stops at the first error, naming the object.
absl::Status Install(KubeApi& api, const std::vector<nlohmann::json>& objects,
                     const std::function<void(const std::string&)>& progress);

// What `cluster info` shows and `cluster up` waits for.
struct PlatformState {
  bool installed = false;  // the operator's Deployment exists
  int operator_ready = 0, operator_wanted = 0;
  int gateway_ready = 0, gateway_wanted = 0;
  // http://host:port where the Service is reachable from outside the cluster: a LoadBalancer's
  // address once the cloud assigned one; empty until then, and for other Service types.
  std::string operator_url;
  std::string api_gateway_url;    // the API gateway listener ("" with api_gateway: none)
  std::string load_balancer_url;  // the load balancer listener
  std::string operator_service_type;
  int realtime_apis = 0;              // Deployments of RealtimeAPIs
  int batch_jobs = 0;                 // Jobs of BatchAPIs
  std::vector<std::string> problems;  // pods of the platform that are not running, and why

  nlohmann::json ToJson() const;
};
absl::StatusOr<PlatformState> ObservePlatform(KubeApi& api,
                                              const config::KubernetesConfig& cluster);

// Whether any object of the installation (`objects`) but the namespace is there: a partial
// install (one that failed half-way) is something to remove too.
bool AnythingInstalled(KubeApi& api, const std::vector<nlohmann::json>& objects);

// Removes the operator's Deployment and waits (at most `operator_grace`) for its pod to stop, as
// it would otherwise make the APIs again; then the cluster's APIs (their Deployments, Services
// and Jobs), the rest of the installation in reverse order, and the namespace when the
// installation created it (its labels say so). Objects already gone are skipped. Reports each
// deletion through `progress`.
absl::Status Uninstall(KubeApi& api, const config::KubernetesConfig& cluster,
                       const std::vector<nlohmann::json>& objects,
                       const std::function<void(const std::string&)>& progress,
                       absl::Duration operator_grace = absl::Seconds(120));

}  // namespace cortex::backends::kubernetes
