// The Backend port: how the operator runs workloads on a provider.
//
// The operator says what should run, as whole sets: one replica set per RealtimeAPI (its current
// version, how many replicas, how to roll them) and one worker set per running batch job (how
// many workers should be running now). A Backend makes it so, the way a Kubernetes Deployment or
// Job controller would, and reports every replica and worker it runs. Sets absent from a call
// are removed. Nothing in the port names a process: the local provider (backends/local/) runs
// child processes, a Kubernetes provider fills the same calls with Deployments and Jobs.
// FakeBackend (backends/testing/) stands in for tests.
//
// Called from the operator's control-loop thread only; a call may take as long as the
// provider's observation does (it never holds the operator's locks).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/resources.h"
#include "common/replica_state.h"
#include "config/api_config.h"

namespace cortex::backends {

// Where a ready replica's front listens.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  // Its Unix-domain socket, where the provider runs it on the gateway's machine (local); the
  // gateway prefers it to TCP. Empty elsewhere.
  std::string unix_socket = {};
};

struct ReplicaSetSpec {
  std::string api_name;
  // The version: replicas of another predictor_id or deployment_id are rolled (spec §1).
  std::string predictor_id;
  std::string deployment_id;
  // The stored record's ids (labels of the Kubernetes objects).
  std::string api_id = {};
  std::string spec_id = {};
  int replicas = 1;
  std::shared_ptr<const config::ApiConfig> api;  // predictor, compute, update_strategy
  std::string project_dir;
  std::string python;                      // the interpreter of the Python runtime
  std::map<std::string, std::string> env;  // e.g. CORTEX_LOAD_BALANCER_URL
};

struct ReplicaStatus {
  std::string id;
  bool updated = true;  // runs the set's current version
  ReplicaState state = ReplicaState::kStarting;
  Endpoint endpoint;  // set once the replica listens
  int restarts = 0;
  // What the provider can tell people about it ({"pid": 4242} here, a pod name elsewhere).
  nlohmann::json details = nlohmann::json::object();
};

struct ReplicaSetStatus {
  std::string api_name;
  std::string predictor_id;  // the version the replicas' `updated` refers to
  std::string deployment_id;
  std::vector<ReplicaStatus> replicas;
  std::vector<std::string> events;  // what the provider did or saw in this call, for the API's log
};

struct WorkerSetSpec {
  std::string job_id;
  std::string api_name;
  std::string api_id = {};  // the API version the job was submitted to
  int running = 1;          // workers that should be running now (never more are started)
  int max_failures = 0;     // no new worker once this many have failed (0: no limit)
  std::shared_ptr<const config::ApiConfig> api;
  std::string project_dir;
  nlohmann::json job_spec;  // what the worker receives as the job
  std::string python;
  std::string operator_url;  // where workers lease batches
  std::string log_path;      // the job's log
  std::map<std::string, std::string> env;
};

struct WorkerExit {
  std::string worker_id;
  int exit_code = 0;   // 0: it finished its work
  std::string reason;  // "exited with status 1", "was killed by signal 9"
};

struct WorkerSetStatus {
  std::string job_id;
  int running = 0;
  int succeeded = 0;                // exited 0, over the set's life
  int failed = 0;                   // exited otherwise, over the set's life
  std::vector<WorkerExit> exits;    // the exits seen in this call (each is reported once)
  std::vector<std::string> events;  // e.g. "started worker X", for the job's log
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Makes the replica sets match `sets` and reports the replicas of each (in `sets` order).
  virtual std::vector<ReplicaSetStatus> SyncReplicaSets(
      const std::vector<ReplicaSetSpec>& sets) = 0;
  // The same for batch workers: a set absent from `sets` has its workers stopped (those found
  // dead are still reported once) and is forgotten.
  virtual std::vector<WorkerSetStatus> SyncWorkerSets(const std::vector<WorkerSetSpec>& sets) = 0;
  // Cluster down: every replica and worker stops; the sets come back at the next Sync.
  virtual void StopAll() = 0;
};

}  // namespace cortex::backends
