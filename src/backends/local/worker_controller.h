// The local provider's batch worker sets, run the way a Kubernetes Job controller runs pods: each
// Sync observes every worker process, records how each one ended, and starts workers until each
// set has the number it asks for. Worker records live in the job queue's database (they survive
// an operator restart; the processes are re-adopted). Control-loop thread only.
#pragma once

#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/local/instance_runner.h"
#include "common/clock.h"
#include "store/job_queue.h"

namespace cortex::backends::local {

struct WorkerControllerOptions {
  std::string data_dir;  // run/job-<id>.json: the spec a job's workers read
  int stop_grace_ms = 5'000;
};

class WorkerController {
 public:
  WorkerController(WorkerControllerOptions options, store::JobQueue& records,
                   InstanceRunner& runner, const Clock& clock);

  std::vector<WorkerSetStatus> Sync(const std::vector<WorkerSetSpec>& sets);
  // Every worker stops; the batches they held go back to the queue at once.
  void StopAll();

 private:
  absl::Status Start(const WorkerSetSpec& set, std::vector<std::string>& events);

  WorkerControllerOptions options_;
  store::JobQueue& records_;
  InstanceRunner& runner_;
  const Clock& clock_;
};

}  // namespace cortex::backends::local
