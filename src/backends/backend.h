// The Backend port: how the operator runs replicas on a provider.
//
// The operator decides what should run (reconciler); a Backend makes it so and reports what it
// sees. Implemented by LocalBackend (child processes on this machine, backends/local/) and by
// FakeBackend for tests (backends/testing/). Called from the operator's control-loop thread only.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "store/state_store.h"

namespace cortex::backends {

struct ReplicaLaunch {
  std::string replica_id;
  std::string api_name;
  std::string spec_path;  // JSON the replica and its workers read (see docs/worker-protocol.md)
  std::string python;     // interpreter for the Python runtime
  std::map<std::string, std::string> env;  // extra environment (e.g. CUDA_VISIBLE_DEVICES)
};

struct ReplicaProbe {
  bool alive = false;  // the replica's process exists
  bool ready = false;  // it answers its readiness check
  uint16_t port = 0;   // 0 until the replica has bound its port
  int exit_code = 0;   // when !alive: exit status, or 128+signal
  bool oom = false;    // when !alive: killed for exceeding its memory limit
  std::string reason;  // when !alive: what happened, for the API's log
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

class Backend {
 public:
  virtual ~Backend() = default;
  // Starts one replica; returns the handle to store (a process id on the local provider).
  virtual absl::StatusOr<pid_t> StartReplica(const ReplicaLaunch& launch) = 0;
  // Starts one batch worker process (python/cortex_runtime/batch.py).
  virtual absl::StatusOr<pid_t> StartWorker(const WorkerLaunch& launch) = 0;
  // Looks at a replica (or a worker: its id and pid) started by this or an earlier operator. A
  // replica whose processes together use more than `mem_limit_bytes` (when > 0) is killed and
  // reported oom.
  virtual ReplicaProbe Probe(const store::ReplicaRecord& replica, int64_t mem_limit_bytes) = 0;
  // Asks a replica to drain and stop; kills it after `grace_ms`. Returns when it is gone.
  virtual void StopReplica(const store::ReplicaRecord& replica, int grace_ms) = 0;
};

}  // namespace cortex::backends
