// The local provider's processes: replicas and workers are children of the operator, each in its
// own process group, with their output appended to log files. They survive an operator crash; a
// restarted operator finds them again by process id and instance id (re-adoption).
// Control-loop thread only.
#pragma once

#include <string>

#include "backends/local/instance_runner.h"

namespace cortex::backends::local {

struct ProcessRunnerOptions {
  std::string data_dir;     // logs/, run/ live under it
  std::string executable;   // the cortex binary (runs `cortex replica`)
  std::string runtime_dir;  // holds the cortex_runtime Python package
  std::string host = "127.0.0.1";
  uint32_t log_line_bytes = 64 << 10;  // replicas split longer output lines
};

class ProcessRunner : public InstanceRunner {
 public:
  explicit ProcessRunner(ProcessRunnerOptions options);
  absl::StatusOr<pid_t> StartReplica(const ReplicaLaunch& launch) override;
  absl::StatusOr<pid_t> StartWorker(const WorkerLaunch& launch) override;
  InstanceProbe Probe(const std::string& id, pid_t pid, int64_t mem_limit_bytes) override;
  void Stop(const std::string& id, pid_t pid, int grace_ms) override;
  std::string host() const override { return options_.host; }
  std::string UnixSocket(const std::string& id) const override;

  std::string LogPath(const std::string& api_name) const;
  std::string PortFile(const std::string& replica_id) const;

 private:
  ProcessRunnerOptions options_;
};

}  // namespace cortex::backends::local
