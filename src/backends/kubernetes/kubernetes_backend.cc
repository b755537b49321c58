#include "backends/kubernetes/kubernetes_backend.h"

#include <absl/strings/str_cat.h>

#include <iostream>
#include <optional>

#include "backends/kubernetes/apply.h"
#include "backends/kubernetes/manifests.h"
#include "backends/kubernetes/pod_status.h"
#include "common/status.h"
#include "common/util.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

std::string Name(const json& object) { return object["metadata"].value("name", ""); }

// The items of a List answer, by name.
std::map<std::string, json> ByName(const json& list) {
  std::map<std::string, json> out;
  for (const auto& item : list.value("items", json::array())) out[Name(item)] = item;
  return out;
}

bool Terminating(const json& pod) { return pod["metadata"].contains("deletionTimestamp"); }

constexpr const char* kRealtimePods = "apiKind=RealtimeAPI";
constexpr const char* kBatchPods = "apiKind=BatchAPI";

// The pods of one job among a List answer's batch pods.
json JobPods(const json& pods, const std::string& job_id) {
  json items = json::array();
  for (const auto& pod : pods["items"]) {
    if (pod["metadata"].value("labels", json::object()).value("jobID", "") == job_id) {
      items.push_back(pod);
    }
  }
  return json{{"items", std::move(items)}};
}

}  // namespace

KubernetesBackend::KubernetesBackend(KubeApi& api, config::KubernetesConfig cluster,
                                     KubernetesBackendOptions options)
    : api_(api), cluster_(std::move(cluster)) {
  if (options.watch_pods) {
    realtime_pods_ = std::make_unique<PodWatch>(api_, kRealtimePods, options.pod_watch);
    batch_pods_ = std::make_unique<PodWatch>(api_, kBatchPods, options.pod_watch);
  }
}

std::optional<json> KubernetesBackend::WatchedPods(const std::string& api_kind) const {
  PodWatch* watch = api_kind == "RealtimeAPI" ? realtime_pods_.get()
                    : api_kind == "BatchAPI"  ? batch_pods_.get()
                                              : nullptr;
  return watch != nullptr ? watch->Snapshot() : std::nullopt;
}

absl::StatusOr<json> KubernetesBackend::Pods(PodWatch* watch, const std::string& selector) {
  if (watch != nullptr) {
    if (auto snapshot = watch->Snapshot()) return std::move(*snapshot);
  }
  return api_.List(kPods, selector);
}

std::string KubernetesBackend::Selector(const std::string& kind) const {
  return absl::StrCat(ClusterSelector(cluster_), ",apiKind=", kind);
}

void KubernetesBackend::DeleteAbsent(const Resource& resource, const json& items,
                                     const std::set<std::string>& keep,
                                     std::vector<std::string>& events) {
  for (const auto& [name, object] : ByName(items)) {
    if (keep.count(name)) continue;
    absl::Status st = api_.Delete(resource, name);
    if (st.ok() || absl::IsNotFound(st)) {
      events.push_back(absl::StrCat("deleted ", resource.kind, " ", name));
    } else {
      events.push_back(absl::StrCat("deleting ", resource.kind, " ", name, ": ", st.message()));
    }
  }
}

std::vector<ReplicaSetStatus> KubernetesBackend::SyncReplicaSets(
    const std::vector<ReplicaSetSpec>& sets) {
  std::vector<ReplicaSetStatus> out;
  auto deployments = api_.List(kDeployments, Selector("RealtimeAPI"));
  auto services = deployments.ok() ? api_.List(kServices, Selector("RealtimeAPI"))
                                   : absl::StatusOr<json>(deployments.status());
  auto pods = services.ok() ? Pods(realtime_pods_.get(), kRealtimePods)
                            : absl::StatusOr<json>(services.status());
  if (!pods.ok()) {
    // Nothing is known now: the last observation stands, and nothing is deleted.
    for (const auto& set : sets) {
      ReplicaSetStatus status =
          last_replicas_.count(set.api_name) ? last_replicas_[set.api_name] : ReplicaSetStatus{};
      status.api_name = set.api_name;
      status.predictor_id = set.predictor_id;
      status.deployment_id = set.deployment_id;
      status.events = {absl::StrCat("kubernetes: ", pods.status().message())};
      out.push_back(std::move(status));
    }
    return out;
  }
  std::map<std::string, json> existing_deployments = ByName(*deployments);
  std::map<std::string, json> existing_services = ByName(*services);
  std::map<std::string, std::vector<const json*>> pods_by_api;
  for (const auto& pod : (*pods)["items"]) {
    pods_by_api[pod["metadata"].value("labels", json::object()).value("apiName", "")].push_back(
        &pod);
  }
  auto find = [](const std::map<std::string, json>& m, const std::string& n) {
    auto it = m.find(n);
    return it == m.end() ? nullptr : &it->second;
  };
  std::set<std::string> keep;
  for (const auto& set : sets) {
    ReplicaSetStatus status;
    status.api_name = set.api_name;
    status.predictor_id = set.predictor_id;
    status.deployment_id = set.deployment_id;
    std::string name = absl::StrCat("api-", set.api_name);
    keep.insert(name);
    ApiVersion version{set.api.get(),    set.api_id,        set.spec_id,
                       set.predictor_id, set.deployment_id, set.replicas};
    auto objects = set.api ? RealtimeApiObjects(version, cluster_)
                           : absl::StatusOr<std::vector<json>>(
                                 absl::InvalidArgumentError("the replica set has no API"));
    if (!objects.ok()) {
      // It cannot be placed on this cluster's nodes: compute unavailable, said once per call.
      ReplicaStatus stalled;
      stalled.id = name;
      stalled.state = ReplicaState::kStalled;
      stalled.details = {{"problem", std::string(objects.status().message())}};
      status.replicas.push_back(stalled);
      status.events.push_back(absl::StrCat("cannot run: ", objects.status().message()));
    } else {
      absl::Status st =
          ApplyObject(api_, kDeployments, (*objects)[0], find(existing_deployments, name),
                      /*scalable=*/true, status.events);
      if (st.ok()) {
        st = ApplyObject(api_, kServices, (*objects)[1], find(existing_services, name),
                         /*scalable=*/false, status.events);
      }
      if (!st.ok()) status.events.push_back(absl::StrCat("kubernetes: ", st.message()));
    }
    for (const json* pod : pods_by_api[set.api_name]) {
      ReplicaStatus replica = PodReplica(*pod, set.predictor_id, set.deployment_id);
      if (replica.state != ReplicaState::kReady && replica.details.contains("problem")) {
        status.events.push_back(absl::StrCat("replica ", replica.id, ": ",
                                             replica.details["problem"].get<std::string>()));
      }
      status.replicas.push_back(std::move(replica));
    }
    last_replicas_[set.api_name] = status;
    out.push_back(std::move(status));
  }
  std::vector<std::string> removed;
  DeleteAbsent(kDeployments, *deployments, keep, removed);
  DeleteAbsent(kServices, *services, keep, removed);
  std::erase_if(last_replicas_,
                [&](const auto& entry) { return !keep.count(absl::StrCat("api-", entry.first)); });
  for (const auto& line : removed) std::cerr << "kubernetes: " << line << "\n";
  return out;
}

std::vector<WorkerSetStatus> KubernetesBackend::SyncWorkerSets(
    const std::vector<WorkerSetSpec>& sets) {
  std::vector<WorkerSetStatus> out;
  auto jobs = api_.List(kJobs, Selector("BatchAPI"));
  if (!jobs.ok()) {
    for (const auto& set : sets) {
      WorkerSetStatus status;
      status.job_id = set.job_id;
      status.events = {absl::StrCat("kubernetes: ", jobs.status().message())};
      out.push_back(std::move(status));
    }
    return out;
  }
  std::map<std::string, json> existing = ByName(*jobs);
  // With a watch one snapshot serves every job; without, each job's pods are listed.
  std::optional<json> batch_pods = batch_pods_ ? batch_pods_->Snapshot() : std::nullopt;
  std::set<std::string> keep;
  for (const auto& set : sets) {
    WorkerSetStatus status;
    status.job_id = set.job_id;
    WorkerTally& tally = workers_[set.job_id];
    std::string name = set.api ? absl::StrCat(set.api->name, "-", set.job_id) : set.job_id;
    keep.insert(name);
    BatchJob job{set.api.get(), set.api_id, set.job_id, set.running, set.max_failures};
    auto object = set.api ? BatchJobObject(job, cluster_)
                          : absl::StatusOr<json>(absl::InvalidArgumentError("no API"));
    auto it = existing.find(name);
    if (!object.ok()) {
      status.events.push_back(
          absl::StrCat("cannot run the job's workers: ", object.status().message()));
    } else if (it == existing.end() && set.running <= 0) {
      // Nothing to run, nothing to create.
    } else {
      absl::Status st =
          ApplyObject(api_, kJobs, *object, it == existing.end() ? nullptr : &it->second,
                      /*scalable=*/false, status.events);
      if (!st.ok()) status.events.push_back(absl::StrCat("kubernetes: ", st.message()));
    }
    auto pods = batch_pods ? absl::StatusOr<json>(JobPods(*batch_pods, set.job_id))
                           : api_.List(kPods, absl::StrCat(kBatchPods, ",jobID=", set.job_id));
    if (!pods.ok()) {
      status.events.push_back(absl::StrCat("kubernetes: ", pods.status().message()));
    } else {
      for (const auto& pod : pods->value("items", json::array())) {
        std::string pod_name = Name(pod);
        std::string phase = pod.value("status", json::object()).value("phase", "");
        if (phase == "Succeeded" || phase == "Failed") {
          if (!tally.reported.insert(pod_name).second) continue;
          WorkerExit exit;
          exit.worker_id = pod_name;
          std::string problem = PodProblem(pod);
          exit.exit_code = phase == "Succeeded" ? 0 : 1;
          exit.reason = phase == "Succeeded" ? "exited with status 0"
                        : problem.empty()    ? "failed"
                                             : problem;
          (phase == "Succeeded" ? tally.succeeded : tally.failed) += 1;
          status.exits.push_back(std::move(exit));
        } else if (!Terminating(pod)) {
          ++status.running;
        }
      }
    }
    status.succeeded = tally.succeeded;
    status.failed = tally.failed;
    out.push_back(std::move(status));
  }
  std::vector<std::string> removed;
  DeleteAbsent(kJobs, *jobs, keep, removed);
  std::erase_if(workers_, [&](const auto& entry) {
    for (const auto& set : sets) {
      if (set.job_id == entry.first) return false;
    }
    return true;
  });
  for (const auto& line : removed) std::cerr << "kubernetes: " << line << "\n";
  return out;
}

void KubernetesBackend::StopAll() {
  std::vector<std::string> events;
  for (const Resource* r : {&kDeployments, &kServices}) {
    if (auto items = api_.List(*r, Selector("RealtimeAPI")); items.ok()) {
      DeleteAbsent(*r, *items, {}, events);
    }
  }
  if (auto jobs = api_.List(kJobs, Selector("BatchAPI")); jobs.ok()) {
    DeleteAbsent(kJobs, *jobs, {}, events);
  }
  last_replicas_.clear();
  workers_.clear();
  for (const auto& line : events) std::cerr << "kubernetes: " << line << "\n";
}

}  // namespace cortex::backends::kubernetes
