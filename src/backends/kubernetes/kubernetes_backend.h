// The Backend port on Kubernetes (docs/kubernetes.md): each replica set is a Deployment and a
// Service (backends/kubernetes/manifests.h), each worker set a Job; the replicas and workers are
// the pods the cluster runs for them. Every call lists what exists, so an operator that restarts
// picks up where the last one left off; writes are idempotent:
//
// - An object is created when missing, replaced when its spec hash (an annotation of the
//   rendered object, replicas left out) differs, and otherwise only scaled through the scale
//   subresource. A replace that loses a race (409) re-reads the object and tries again.
// - Objects of the cluster's (labels) that no set names are deleted.
// - When the API cannot be listed, a set keeps its last observation (with the error as an event).
//
// Called from the operator's control-loop thread only.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/kubernetes/kube_api.h"
#include "config/kubernetes_config.h"

namespace cortex::backends::kubernetes {

inline constexpr const char* kSpecHashAnnotation = "cortex.dev/spec-hash";

class KubernetesBackend : public Backend {
 public:
  KubernetesBackend(KubeApi& api, config::KubernetesConfig cluster);

  std::vector<ReplicaSetStatus> SyncReplicaSets(const std::vector<ReplicaSetSpec>& sets) override;
  std::vector<WorkerSetStatus> SyncWorkerSets(const std::vector<WorkerSetSpec>& sets) override;
  void StopAll() override;

 private:
  struct WorkerTally {
    int succeeded = 0;
    int failed = 0;
    std::set<std::string> reported;  // pods whose end was reported
  };

  // The label selector of this cluster's objects of `kind` (RealtimeAPI | BatchAPI).
  std::string Selector(const std::string& kind) const;
  // Makes the object match `desired`: created, replaced, or scaled (`scalable`). Appends what it
  // did to `events`.
  absl::Status Apply(const Resource& resource, nlohmann::json desired,
                     const nlohmann::json* existing, bool scalable,
                     std::vector<std::string>& events);
  void DeleteAbsent(const Resource& resource, const nlohmann::json& items,
                    const std::set<std::string>& keep, std::vector<std::string>& events);

  KubeApi& api_;
  const config::KubernetesConfig cluster_;
  std::map<std::string, ReplicaSetStatus> last_replicas_;  // by API name
  std::map<std::string, WorkerTally> workers_;             // by job id
};

}  // namespace cortex::backends::kubernetes
