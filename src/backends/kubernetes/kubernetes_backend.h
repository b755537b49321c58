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
// - With watch_pods, the pods come from two PodWatches (RealtimeAPI, BatchAPI) instead of a list
//   per pass; while a watch's cache is unknown (its error) the pods are listed as without one.
//
// Called from the operator's control-loop thread only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/kubernetes/apply.h"
#include "backends/kubernetes/kube_api.h"
#include "backends/kubernetes/pod_watch.h"
#include "config/kubernetes_config.h"

namespace cortex::backends::kubernetes {

struct KubernetesBackendOptions {
  bool watch_pods = false;  // learn pods through watches (the operator), not a list per pass
  PodWatchOptions pod_watch;
};

class KubernetesBackend : public Backend {
 public:
  KubernetesBackend(KubeApi& api, config::KubernetesConfig cluster,
                    KubernetesBackendOptions options = {});

  std::vector<ReplicaSetStatus> SyncReplicaSets(const std::vector<ReplicaSetSpec>& sets) override;
  std::vector<WorkerSetStatus> SyncWorkerSets(const std::vector<WorkerSetSpec>& sets) override;
  void StopAll() override;

  // The watched pods of `api_kind` (RealtimeAPI | BatchAPI) as a List answer; nullopt without
  // watch_pods or while the watch's cache is unknown. Thread-safe.
  std::optional<nlohmann::json> WatchedPods(const std::string& api_kind) const;

  // The pod watches (null without watch_pods): a test steps them (start_thread false).
  PodWatch* realtime_pods() { return realtime_pods_.get(); }
  PodWatch* batch_pods() { return batch_pods_.get(); }

 private:
  struct WorkerTally {
    int succeeded = 0;
    int failed = 0;
    std::set<std::string> reported;  // pods whose end was reported
  };

  // The label selector of this cluster's objects of `kind` (RealtimeAPI | BatchAPI).
  std::string Selector(const std::string& kind) const;
  void DeleteAbsent(const Resource& resource, const nlohmann::json& items,
                    const std::set<std::string>& keep, std::vector<std::string>& events);
  // The pods matching `selector`, from `watch` when its cache is known, else listed.
  absl::StatusOr<nlohmann::json> Pods(PodWatch* watch, const std::string& selector);

  KubeApi& api_;
  const config::KubernetesConfig cluster_;
  std::map<std::string, ReplicaSetStatus> last_replicas_;  // by API name
  std::map<std::string, WorkerTally> workers_;             // by job id
  std::unique_ptr<PodWatch> realtime_pods_;                // apiKind=RealtimeAPI
  std::unique_ptr<PodWatch> batch_pods_;                   // apiKind=BatchAPI
};

}  // namespace cortex::backends::kubernetes
