// The local provider's replica sets, run the way a Kubernetes Deployment controller runs pods:
// each Sync observes every replica process (probe), then starts, restarts and stops replicas so
// that each set has its desired count of its current version, rolling with the set's
// update_strategy (replica_plan.h). Compute is checked against the machine ("compute
// unavailable" when it does not fit), memory is enforced through the runner, GPUs are handed out
// whole. The replica records (StateStore) survive an operator restart; the processes are
// re-adopted from them. Control-loop thread only.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/local/instance_runner.h"
#include "common/clock.h"
#include "store/state_store.h"

namespace cortex::backends::local {

struct ReplicaControllerOptions {
  std::string data_dir;           // run/<replica>.json: the spec each replica reads
  Resources capacity;             // what this machine has
  int64_t drain_delay_ms = 1500;  // out of the route table this long before being stopped
  int stop_grace_ms = 10'000;     // then killed
  // A replica that was ready and has not answered its readiness check for this long (stopped,
  // hung, every worker process down) is killed and started again.
  int64_t unresponsive_ms = 30'000;
};

class ReplicaController {
 public:
  ReplicaController(ReplicaControllerOptions options, store::StateStore& records,
                    InstanceRunner& runner, const Clock& clock);

  std::vector<ReplicaSetStatus> Sync(const std::vector<ReplicaSetSpec>& sets);
  void StopAll();

 private:
  using Sets = std::map<std::string, const ReplicaSetSpec*>;
  using Records = std::map<std::string, store::ReplicaRecord>;

  // Probes `r` and applies what it saw; events go to the replica's set.
  void Observe(store::ReplicaRecord& r, const ReplicaSetSpec& set, int64_t now_ms,
               std::vector<std::string>& events);
  void Act(const ReplicaSetSpec& set, Records& records, const Sets& sets, int64_t now_ms,
           std::vector<std::string>& events);
  // Starts `replica`, or leaves it stalled when the machine cannot fit it beside `used` (the
  // caller stores the record).
  void Start(store::ReplicaRecord& replica, const ReplicaSetSpec& set, const Resources& used,
             int64_t now_ms, std::vector<std::string>& events);
  Resources Used(const Records& records, const Sets& sets, const std::string& except) const;
  // Stores a transition made from `before` (compare-and-set on its state).
  void Store(const store::ReplicaRecord& r, const store::ReplicaRecord& before);
  // Removes every trace of a stopped replica (record, GPUs, spec file).
  void Forget(const store::ReplicaRecord& replica);
  std::string SpecPath(const std::string& replica_id) const;
  std::string ManifestPath(const std::string& replica_id) const;

  ReplicaControllerOptions options_;
  store::StateStore& records_;
  InstanceRunner& runner_;
  const Clock& clock_;
  std::map<std::string, std::vector<int>> gpus_;  // by replica id
};

}  // namespace cortex::backends::local
