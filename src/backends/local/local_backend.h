// The local provider: replica sets and worker sets as child processes of the operator on this
// machine (replica_controller.h, worker_controller.h over process_runner.h).
#pragma once

#include <memory>

#include "backends/backend.h"
#include "backends/local/replica_controller.h"
#include "backends/local/worker_controller.h"

namespace cortex::backends::local {

class LocalBackend : public Backend {
 public:
  LocalBackend(ReplicaControllerOptions replica_options, WorkerControllerOptions worker_options,
               store::StateStore& replica_records, store::JobQueue& worker_records,
               std::unique_ptr<InstanceRunner> runner, const Clock& clock)
      : runner_(std::move(runner)),
        replicas_(std::move(replica_options), replica_records, *runner_, clock),
        workers_(std::move(worker_options), worker_records, *runner_, clock) {}

  std::vector<ReplicaSetStatus> SyncReplicaSets(const std::vector<ReplicaSetSpec>& sets) override {
    return replicas_.Sync(sets);
  }
  std::vector<WorkerSetStatus> SyncWorkerSets(const std::vector<WorkerSetSpec>& sets) override {
    return workers_.Sync(sets);
  }
  void StopAll() override {
    replicas_.StopAll();
    workers_.StopAll();
  }

 private:
  std::unique_ptr<InstanceRunner> runner_;
  ReplicaController replicas_;
  WorkerController workers_;
};

}  // namespace cortex::backends::local
