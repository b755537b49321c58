// A Backend that runs nothing: it remembers what it was asked for and reports each set as the
// test wants it (every replica ready by default, at 127.0.0.1 on made-up ports).
#pragma once

#include <absl/strings/str_cat.h>

#include <map>
#include <vector>

#include "backends/backend.h"

namespace cortex::backends::testing {

class FakeBackend : public Backend {
 public:
  std::vector<ReplicaSetStatus> SyncReplicaSets(const std::vector<ReplicaSetSpec>& sets) override {
    replica_calls.push_back(sets);
    std::vector<ReplicaSetStatus> out;
    for (const auto& set : sets) {
      ReplicaSetStatus status;
      status.api_name = set.api_name;
      status.predictor_id = set.predictor_id;
      status.deployment_id = set.deployment_id;
      status.events = events[set.api_name];
      events.erase(set.api_name);
      for (int i = 0; i < set.replicas; ++i) {
        ReplicaStatus r;
        r.id = absl::StrCat(set.api_name, "-", set.deployment_id, "-", i);
        r.state = replica_state;
        r.endpoint = {"127.0.0.1", static_cast<uint16_t>(30000 + i)};
        status.replicas.push_back(r);
      }
      out.push_back(std::move(status));
    }
    return out;
  }
  std::vector<WorkerSetStatus> SyncWorkerSets(const std::vector<WorkerSetSpec>& sets) override {
    worker_calls.push_back(sets);
    std::vector<WorkerSetStatus> out;
    for (const auto& set : sets) {
      WorkerSetStatus status = worker_status[set.job_id];
      status.job_id = set.job_id;
      status.running = set.running;
      out.push_back(std::move(status));
    }
    worker_status.clear();
    return out;
  }
  void StopAll() override { ++stop_all_calls; }

  // The last replica sets asked for, by API name.
  std::map<std::string, ReplicaSetSpec> LastSets() const {
    std::map<std::string, ReplicaSetSpec> out;
    if (!replica_calls.empty()) {
      for (const auto& set : replica_calls.back()) out[set.api_name] = set;
    }
    return out;
  }

  ReplicaState replica_state = ReplicaState::kReady;
  std::map<std::string, std::vector<std::string>> events;  // reported once, by API
  std::map<std::string, WorkerSetStatus> worker_status;    // reported once, by job
  std::vector<std::vector<ReplicaSetSpec>> replica_calls;
  std::vector<std::vector<WorkerSetSpec>> worker_calls;
  int stop_all_calls = 0;
};

}  // namespace cortex::backends::testing
