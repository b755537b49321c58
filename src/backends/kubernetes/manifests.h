// The Kubernetes objects of the platform's workloads (spec §9; docs/kubernetes.md): a RealtimeAPI
// is a Deployment and a Service named api-<name>, a batch job's workers are a Job. The same
// functions feed the Kubernetes backend and `cortex deploy --dry-run --provider kubernetes`, so
// what users review is what would be applied. Pure; thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/api_config.h"
#include "config/kubernetes_config.h"

namespace cortex::backends::kubernetes {

// What every pod of the platform shares: the port the replica front (and the operator, and the
// gateway's API listener) listens on, where the operator's token is mounted, and the in-cluster
// address of the operator.
inline constexpr int kServingPort = 8888;
inline constexpr int kLoadBalancerPort = 8889;
inline constexpr const char* kTokenDir = "/etc/cortex/token";
inline constexpr const char* kTokenSecret = "cortex-operator-token";
inline constexpr const char* kDataDir = "/var/cortex";
std::string OperatorServiceUrl(const config::KubernetesConfig& cluster);
// The operator's token as every pod of the platform has it: the Secret's volume, its read-only
// mount at kTokenDir, and the file the servers are given.
nlohmann::json TokenVolume();
nlohmann::json TokenMount();
std::string TokenFile();

// Labels every object of the platform carries (cluster down finds them by these).
nlohmann::json PlatformLabels(const config::KubernetesConfig& cluster,
                              const std::string& component);
// The label selector of this cluster's objects (of every component): the labels above that say
// whose they are.
std::string ClusterSelector(const config::KubernetesConfig& cluster);

// One version of a RealtimeAPI, as the operator stores it.
struct ApiVersion {
  const config::ApiConfig* api = nullptr;  // a RealtimeAPI
  std::string api_id;
  std::string spec_id;
  std::string predictor_id;
  std::string deployment_id;
  int replicas = 1;
};

// The API's Deployment and Service, or why the cluster cannot run it (placement).
absl::StatusOr<std::vector<nlohmann::json>> RealtimeApiObjects(
    const ApiVersion& version, const config::KubernetesConfig& cluster);

struct BatchJob {
  const config::ApiConfig* api = nullptr;  // a BatchAPI
  std::string api_id;
  std::string job_id;
  int workers = 1;
  int max_failures = 0;  // as backends::WorkerSetSpec: 0 is no limit
};

// The job's Job: `workers` pods in parallel, each leasing batches from the operator until the
// queue is empty (the work-queue pattern: no completions count).
absl::StatusOr<nlohmann::json> BatchJobObject(const BatchJob& job,
                                              const config::KubernetesConfig& cluster);

// The image an API's pods run: predictor.image, or the platform's predictor image when the
// API leaves it at Cortex's default (quay.io/cortexlabs/...).
std::string PodImage(const config::ApiConfig& api, const config::KubernetesConfig& cluster);

}  // namespace cortex::backends::kubernetes
