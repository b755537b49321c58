// An InstanceRunner without processes: every start succeeds (unless told otherwise) and the
// instance is alive; tests decide when it is ready, when it dies and how.
#pragma once

#include <absl/strings/str_cat.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "backends/local/instance_runner.h"

namespace cortex::backends::local::testing {

class FakeRunner : public InstanceRunner {
 public:
  struct Instance {
    pid_t pid = 0;
    bool alive = true;
    bool ready = false;
    uint16_t port = 0;
    int exit_code = 0;
    bool oom = false;
  };

  absl::StatusOr<pid_t> StartReplica(const ReplicaLaunch& launch) override {
    if (fail_starts)
      return absl::UnavailableError("starting replica " + launch.replica_id + ": no");
    replica_launches.push_back(launch);
    return Add(launch.replica_id);
  }
  absl::StatusOr<pid_t> StartWorker(const WorkerLaunch& launch) override {
    worker_launches.push_back(launch);
    return Add(launch.worker_id);
  }
  InstanceProbe Probe(const std::string& id, pid_t pid, int64_t mem_limit_bytes) override {
    last_mem_limit = mem_limit_bytes;
    InstanceProbe probe;
    auto it = instances.find(id);
    if (it == instances.end() || it->second.pid != pid) {
      probe.exit_code = 1;
      probe.reason = "is gone";
      return probe;
    }
    const Instance& i = it->second;
    probe.alive = i.alive;
    probe.ready = i.alive && i.ready;
    probe.port = i.alive ? i.port : 0;
    probe.exit_code = i.exit_code;
    probe.oom = i.oom;
    probe.reason = i.alive ? ""
                   : i.oom ? "used too much memory and was killed"
                           : absl::StrCat("exited with status ", i.exit_code);
    return probe;
  }
  void Stop(const std::string& id, pid_t, int) override {
    stopped.push_back(id);
    instances.erase(id);
  }
  std::string host() const override { return "127.0.0.1"; }

  // Test controls.
  void MakeReady(const std::string& id) {
    instances[id].ready = true;
    instances[id].port = static_cast<uint16_t>(20000 + instances[id].pid);
  }
  void Exit(const std::string& id, int code, bool oom = false) {
    instances[id].alive = false;
    instances[id].exit_code = code;
    instances[id].oom = oom;
  }
  std::vector<std::string> Alive() const {
    std::vector<std::string> ids;
    for (const auto& [id, i] : instances) {
      if (i.alive) ids.push_back(id);
    }
    return ids;
  }

  std::map<std::string, Instance> instances;
  std::vector<ReplicaLaunch> replica_launches;
  std::vector<WorkerLaunch> worker_launches;
  std::vector<std::string> stopped;
  int64_t last_mem_limit = 0;
  bool fail_starts = false;

 private:
  pid_t Add(const std::string& id) {
    Instance instance;
    instance.pid = ++next_pid_;
    instances[id] = instance;
    return instance.pid;
  }
  pid_t next_pid_ = 1000;
};

}  // namespace cortex::backends::local::testing
