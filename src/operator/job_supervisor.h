// Keeps each running batch job's workers going: every control-loop pass it ends jobs past their
// timeout, asks the Backend for the workers each job needs (while batches remain, or one to run
// on_job_complete), returns a dead worker's batches to the queue at once, and ends a job whose
// workers crash-loop. Control-loop thread only.
#pragma once

#include "backends/backend.h"
#include "common/clock.h"
#include "operator/api_logs.h"
#include "operator/api_spec.h"
#include "operator/job_service.h"
#include "store/job_queue.h"
#include "store/state_store.h"

namespace cortex::op {

class JobSupervisor {
 public:
  JobSupervisor(BatchOptions options, store::JobQueue& queue, store::StateStore& store,
                SpecCache& specs, backends::Backend& backend, const ApiLogs& logs,
                const Clock& clock);

  void Step();

  // A job ends as "worker error" once its workers failed this many times per requested worker.
  static constexpr int kMaxFailuresPerWorker = 5;

 private:
  const BatchOptions options_;
  store::JobQueue& queue_;
  store::StateStore& store_;
  SpecCache& specs_;
  backends::Backend& backend_;
  const ApiLogs& logs_;
  const Clock& clock_;
};

}  // namespace cortex::op
