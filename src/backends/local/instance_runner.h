// The local provider's process layer: starts, probes and stops one replica (`cortex replica`)
// or one batch worker (the Python runtime's batch loop). ProcessRunner is the real one;
// FakeRunner (testing/) lets the controllers be tested without processes. Control-loop thread.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace cortex::backends::local {

struct ReplicaLaunch {
  std::string replica_id;
  std::string api_name;
  std::string spec_path;  // JSON the replica and its workers read (docs/worker-protocol.md)
  std::string python;     // interpreter for the Python runtime
  std::map<std::string, std::string> env;  // extra environment (e.g. CUDA_VISIBLE_DEVICES)
};

struct WorkerLaunch {
  std::string worker_id;
  std::string job_id;
  std::string spec_path;  // the API config, project_dir and job_spec
  std::string python;
  std::string operator_url;  // where the worker leases batches
  std::string log_path;      // the job's log
  std::string working_dir;   // the project
  std::map<std::string, std::string> env;
};

struct InstanceProbe {
  bool alive = false;  // the process exists
  bool ready = false;  // a replica answers its readiness check
  uint16_t port = 0;   // 0 until a replica has bound its port
  int exit_code = 0;   // when !alive: exit status, or 128+signal
  bool oom = false;    // when !alive: killed for exceeding its memory limit
  std::string reason;  // when !alive: what happened, for the log
};

class InstanceRunner {
 public:
  virtual ~InstanceRunner() = default;
  virtual absl::StatusOr<pid_t> StartReplica(const ReplicaLaunch& launch) = 0;
  virtual absl::StatusOr<pid_t> StartWorker(const WorkerLaunch& launch) = 0;
  // Looks at an instance started by this or an earlier operator. One whose processes together
  // use more than `mem_limit_bytes` (when > 0) is killed and reported oom.
  virtual InstanceProbe Probe(const std::string& id, pid_t pid, int64_t mem_limit_bytes) = 0;
  // Asks it to drain and stop; kills it after `grace_ms`. Returns when it is gone.
  virtual void Stop(const std::string& id, pid_t pid, int grace_ms) = 0;
  // The address replicas listen on.
  virtual std::string host() const = 0;
  // The Unix socket replica `id` listens on besides host:port once its port is known, or "".
  virtual std::string UnixSocket(const std::string& /*id*/) const { return ""; }
};

}  // namespace cortex::backends::local
