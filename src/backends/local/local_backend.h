// Replicas as child processes of the operator, each in its own process group, with their output
// appended to <data>/logs/apis/<api>.log. Replicas survive an operator crash; a restarted
// operator finds them again by process id and replica id (re-adoption). Control-loop thread only.
#pragma once

#include <string>

#include "backends/backend.h"

namespace cortex::backends {

struct LocalBackendOptions {
  std::string data_dir;     // logs/, run/ live under it
  std::string executable;   // the cortex binary (runs `cortex replica`)
  std::string runtime_dir;  // holds the cortex_runtime Python package
  std::string host = "127.0.0.1";
};

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(LocalBackendOptions options);
  absl::StatusOr<pid_t> StartReplica(const ReplicaLaunch& launch) override;
  absl::StatusOr<pid_t> StartWorker(const WorkerLaunch& launch) override;
  ReplicaProbe Probe(const store::ReplicaRecord& replica, int64_t mem_limit_bytes) override;
  void StopReplica(const store::ReplicaRecord& replica, int grace_ms) override;

  std::string LogPath(const std::string& api_name) const;
  std::string PortFile(const std::string& replica_id) const;
  // Resident memory of every process in the process group `pgid`.
  static int64_t GroupRssBytes(pid_t pgid);

 private:
  LocalBackendOptions options_;
};

}  // namespace cortex::backends
