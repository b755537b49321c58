// What `cortex cluster up --provider kubernetes` installs into a cluster (docs/kubernetes.md):
// the namespace; the operator (one replica, SQLite on a PersistentVolumeClaim, its token in a
// Secret, a ServiceAccount bound to a namespaced Role with only what the backend does); the
// gateway (a Deployment behind a Service, both listeners, only the load balancer's with
// `api_gateway: none`); and the cluster configuration as a ConfigMap. In apply order. Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/cluster_config.h"

namespace cortex::backends::kubernetes {

// `token` is the operator's token (it goes into the Secret).
std::vector<nlohmann::json> InstallObjects(const config::ClusterConfig& cluster,
                                           const std::string& token);

// The Role's rules: what the operator's Kubernetes backend calls, and nothing else.
nlohmann::json OperatorRules();

}  // namespace cortex::backends::kubernetes
