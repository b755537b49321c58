#include "backends/local/replica_controller.h"

#include <absl/strings/str_cat.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backends/local/capacity.h"
#include "backends/local/replica_plan.h"
#include "common/instance_spec.h"
#include "common/util.h"

namespace cortex::backends::local {

namespace fs = std::filesystem;
using nlohmann::json;
using store::ReplicaRecord;

namespace {

bool IsUpdated(const ReplicaRecord& r, const ReplicaSetSpec& set) {
  return r.predictor_id == set.predictor_id && r.deployment_id == set.deployment_id;
}

int64_t MemLimit(const ReplicaSetSpec& set) {
  return set.api ? set.api->compute.mem_bytes.value_or(0) : 0;
}

Resources Request(const ReplicaSetSpec& set) {
  return set.api ? Resources::FromCompute(set.api->compute) : Resources{};
}

}  // namespace

ReplicaController::ReplicaController(ReplicaControllerOptions options, store::StateStore& records,
                                     InstanceRunner& runner, const Clock& clock)
    : options_(std::move(options)), records_(records), runner_(runner), clock_(clock) {
  fs::create_directories(fs::path(options_.data_dir) / "run");
  // GPUs held by replicas that outlived an earlier operator process.
  if (auto replicas = records_.ListReplicas(); replicas.ok()) {
    for (const auto& r : *replicas) {
      auto spec = ReadFile(SpecPath(r.id));
      if (!spec.ok()) continue;
      json parsed = json::parse(*spec, nullptr, false);
      if (parsed.is_object() && parsed["gpu_ids"].is_array() && !parsed["gpu_ids"].empty()) {
        gpus_[r.id] = parsed["gpu_ids"].get<std::vector<int>>();
      }
    }
  }
}

std::string ReplicaController::ManifestPath(const std::string& replica_id) const {
  return absl::StrCat(options_.data_dir, "/run/", replica_id, ".models.json");
}

std::string ReplicaController::SpecPath(const std::string& replica_id) const {
  return absl::StrCat(options_.data_dir, "/run/", replica_id, ".json");
}

std::vector<ReplicaSetStatus> ReplicaController::Sync(const std::vector<ReplicaSetSpec>& sets) {
  Sets by_name;
  for (const auto& set : sets) by_name[set.api_name] = &set;
  std::map<std::string, std::vector<std::string>> events;
  auto listed = records_.ListReplicas();
  if (!listed.ok()) {
    std::cerr << "replicas: " << listed.status() << std::endl;
    return {};
  }
  int64_t now_ms = clock_.NowMs();

  // 1. Observe. Replicas of a removed set, and drained ones, are stopped below.
  Records records;
  std::vector<ReplicaRecord> to_stop;
  for (auto& r : *listed) {
    auto set = by_name.find(r.api_name);
    if (set == by_name.end() || (r.state == ReplicaState::kStopping && r.next_start_at <= now_ms)) {
      to_stop.push_back(r);
      continue;
    }
    Observe(r, *set->second, now_ms, events[r.api_name]);
    records[r.id] = r;
  }

  // 2. Act: each set towards its desired count of its current version.
  for (const auto& set : sets) Act(set, records, by_name, now_ms, events[set.api_name]);

  // 3. Stop (each drains first; the set's other replicas are already serving without it).
  for (const auto& r : to_stop) {
    runner_.Stop(r.id, r.pid, options_.stop_grace_ms);
    Forget(r);
  }

  std::vector<ReplicaSetStatus> out;
  for (const auto& set : sets) {
    ReplicaSetStatus status;
    status.api_name = set.api_name;
    status.predictor_id = set.predictor_id;
    status.deployment_id = set.deployment_id;
    status.events = std::move(events[set.api_name]);
    for (const auto& [id, r] : records) {
      if (r.api_name != set.api_name) continue;
      ReplicaStatus replica;
      replica.id = id;
      replica.updated = IsUpdated(r, set);
      replica.state = r.state;
      if (r.port > 0) replica.endpoint = {runner_.host(), r.port, runner_.UnixSocket(id)};
      replica.restarts = r.restarts;
      replica.details = {{"pid", r.pid}};
      status.replicas.push_back(std::move(replica));
    }
    out.push_back(std::move(status));
  }
  return out;
}

void ReplicaController::Observe(ReplicaRecord& r, const ReplicaSetSpec& set, int64_t now_ms,
                                std::vector<std::string>& events) {
  if (r.state != ReplicaState::kStarting && r.state != ReplicaState::kReady) return;
  ReplicaRecord before = r;
  InstanceProbe probe = runner_.Probe(r.id, r.pid, MemLimit(set));
  if (!probe.alive) {
    r.state = probe.oom ? ReplicaState::kOom : ReplicaState::kFailed;
    ++r.restarts;
    r.next_start_at = now_ms + RestartBackoffMs(r.restarts);
    r.state_since = now_ms / 1000;
    r.port = 0;
    events.push_back(absl::StrCat("replica ", r.id, " ", probe.reason, "; restarting it in ",
                                  RestartBackoffMs(r.restarts) / 1000, "s"));
  } else {
    r.port = probe.port;
    if (probe.ready && r.state != ReplicaState::kReady) {
      r.state = ReplicaState::kReady;
      r.ever_ready = true;
      r.restarts = 0;
      r.state_since = now_ms / 1000;
    } else if (!probe.ready && r.state == ReplicaState::kReady) {
      r.state = ReplicaState::kStarting;
      r.state_since = now_ms / 1000;
    } else if (!probe.ready && r.ever_ready &&
               now_ms - r.state_since * 1000 > options_.unresponsive_ms) {
      runner_.Stop(r.id, r.pid, 0);
      r.state = ReplicaState::kFailed;
      ++r.restarts;
      r.next_start_at = now_ms + RestartBackoffMs(r.restarts);
      r.state_since = now_ms / 1000;
      r.port = 0;
      events.push_back(absl::StrCat(
          "replica ", r.id, " has not been ready for ", options_.unresponsive_ms / 1000,
          " s (stopped, hung, or no worker process up); restarting it in ",
          RestartBackoffMs(r.restarts) / 1000, "s"));
    }
  }
  Store(r, before);
}

void ReplicaController::Act(const ReplicaSetSpec& set, Records& records, const Sets& sets,
                            int64_t now_ms, std::vector<std::string>& events) {
  std::vector<ReplicaView> views;
  for (const auto& [id, r] : records) {
    if (r.api_name == set.api_name)
      views.push_back({id, IsUpdated(r, set), r.state, r.next_start_at});
  }
  const config::UpdateStrategyConfig strategy =
      set.api ? set.api->update_strategy : config::UpdateStrategyConfig{};
  RolloutLimits limits = ResolveRollout(strategy.max_surge, strategy.max_unavailable, set.replicas);
  ReplicaPlan plan = PlanReplicas(set.replicas, limits, views, now_ms);
  for (const auto& id : plan.stop) {
    // Unpublish first; stop once the gateways have had time to take the new routes (a request
    // already on its way to the replica is still served while it drains).
    ReplicaRecord& r = records[id];
    ReplicaRecord before = r;
    r.state = ReplicaState::kStopping;
    r.next_start_at = now_ms + options_.drain_delay_ms;
    Store(r, before);
    events.push_back(absl::StrCat("stopping replica ", id));
  }
  for (const auto& id : plan.restart) {
    if (records[id].state != ReplicaState::kStalled) {
      events.push_back(absl::StrCat("restarting replica ", id));
    }
    ReplicaRecord& r = records[id];
    ReplicaRecord before = r;
    Start(r, set, Used(records, sets, id), now_ms, events);
    Store(r, before);
  }
  for (int i = 0; i < plan.start; ++i) {
    ReplicaRecord r;
    r.id = absl::StrCat(set.api_name, "-", set.deployment_id.substr(0, 5), "-", RandomId(5));
    r.api_name = set.api_name;
    r.predictor_id = set.predictor_id;
    r.deployment_id = set.deployment_id;
    r.created_at = now_ms / 1000;
    events.push_back(absl::StrCat("starting replica ", r.id));
    Start(r, set, Used(records, sets, r.id), now_ms, events);
    if (absl::Status st = records_.PutReplica(r); !st.ok()) {
      std::cerr << "replica " << r.id << ": " << st << std::endl;
    }
    records[r.id] = r;
  }
}

Resources ReplicaController::Used(const Records& records, const Sets& sets,
                                  const std::string& except) const {
  Resources used;
  for (const auto& [id, r] : records) {
    if (id == except || r.state == ReplicaState::kStalled || r.state == ReplicaState::kStopping) {
      continue;
    }
    auto set = sets.find(r.api_name);
    if (set != sets.end()) used += Request(*set->second);
  }
  return used;
}

void ReplicaController::Start(ReplicaRecord& replica, const ReplicaSetSpec& set,
                              const Resources& used, int64_t now_ms,
                              std::vector<std::string>& events) {
  Resources request = Request(set);
  std::vector<int> gpus;
  std::optional<std::string> shortfall = Shortfall(used, request, options_.capacity);
  if (!shortfall && request.gpu > 0) {
    std::set<int> in_use;
    for (const auto& [id, ids] : gpus_) {
      if (id != replica.id) in_use.insert(ids.begin(), ids.end());
    }
    gpus = PickGpus(in_use, request.gpu, options_.capacity.gpu);
    if (gpus.empty()) shortfall = absl::StrCat("gpu: ", request.gpu, " requested, none free");
  }
  if (shortfall) {
    if (replica.state != ReplicaState::kStalled) {
      events.push_back(absl::StrCat("replica ", replica.id, " cannot start: compute unavailable (",
                                    *shortfall, "; this machine has ", options_.capacity.ToString(),
                                    ")"));
    }
    replica.state = ReplicaState::kStalled;
    replica.state_since = now_ms / 1000;
    replica.next_start_at = now_ms + 2000;
    replica.pid = 0;
    return;
  }
  gpus_.erase(replica.id);
  std::string visible;
  for (int g : gpus) absl::StrAppend(&visible, visible.empty() ? "" : ",", g);
  if (!gpus.empty()) gpus_[replica.id] = gpus;
  // Where the replica keeps its models (docs/models.md): the cluster's cache, and a manifest of
  // its own that its workers read.
  json spec = ReplicaSpecFile(set.api ? set.api->ToJson() : json::object(),
                              {set.project_dir, (fs::path(options_.data_dir) / "models").string(),
                               ManifestPath(replica.id)},
                              replica.id, gpus);
  ReplicaLaunch launch;
  launch.replica_id = replica.id;
  launch.api_name = set.api_name;
  launch.spec_path = SpecPath(replica.id);
  launch.python = set.python;
  launch.env = set.env;
  // Whole GPUs: a replica sees exactly the ones it was given (none when it asked for none).
  launch.env["CUDA_VISIBLE_DEVICES"] = visible;
  absl::Status written = WriteFileAtomic(launch.spec_path, spec.dump());
  absl::StatusOr<pid_t> pid =
      written.ok() ? runner_.StartReplica(launch) : absl::StatusOr<pid_t>(written);
  replica.state = ReplicaState::kStarting;
  replica.state_since = now_ms / 1000;
  replica.port = 0;
  // Only a replica that was ready in this run can hang: a restarted one that is still running
  // its dependency files or its predictor's constructor is starting, however long that takes.
  replica.ever_ready = false;
  if (!pid.ok()) {
    replica.pid = 0;
    replica.state = ReplicaState::kFailed;
    ++replica.restarts;
    replica.next_start_at = now_ms + RestartBackoffMs(replica.restarts);
    events.push_back(std::string(pid.status().message()));
  } else {
    replica.pid = *pid;
  }
}

void ReplicaController::Store(const ReplicaRecord& r, const ReplicaRecord& before) {
  if (r.state == before.state && r.port == before.port && r.restarts == before.restarts &&
      r.pid == before.pid && r.next_start_at == before.next_start_at) {
    return;
  }
  absl::StatusOr<bool> stored = records_.UpdateReplica(r, before.state);
  if (!stored.ok()) {
    std::cerr << "replica " << r.id << ": " << stored.status() << std::endl;
  } else if (!*stored) {
    std::cerr << "replica " << r.id << " changed while it was being updated; the next pass "
              << "looks again" << std::endl;
  }
}

void ReplicaController::StopAll() {
  auto replicas = records_.ListReplicas();
  if (!replicas.ok()) return;
  for (const auto& r : *replicas) {
    runner_.Stop(r.id, r.pid, options_.stop_grace_ms);
    Forget(r);
  }
}

void ReplicaController::Forget(const ReplicaRecord& replica) {
  (void)records_.DeleteReplica(replica.id);
  gpus_.erase(replica.id);
  std::error_code ignored;
  fs::remove(SpecPath(replica.id), ignored);
  fs::remove(ManifestPath(replica.id), ignored);
  fs::remove(ManifestPath(replica.id) + ".wants", ignored);
  for (int i = 0; fs::remove(ManifestPath(replica.id) + ".stats." + std::to_string(i), ignored);
       ++i) {
  }
  fs::remove_all(fs::path(options_.data_dir) / "models" / "replicas" / replica.id, ignored);
}

}  // namespace cortex::backends::local
