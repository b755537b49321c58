#include "operator/job_supervisor.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <map>

#include "common/job_status.h"

namespace cortex::op {

using nlohmann::json;

JobSupervisor::JobSupervisor(BatchOptions options, store::JobQueue& queue, store::StateStore& store,
                             SpecCache& specs, backends::Backend& backend, const ApiLogs& logs,
                             const Clock& clock)
    : options_(std::move(options)),
      queue_(queue),
      store_(store),
      specs_(specs),
      backend_(backend),
      logs_(logs),
      clock_(clock) {}

void JobSupervisor::Step() {
  auto jobs = queue_.ListActiveJobs();
  if (!jobs.ok()) return;
  std::vector<backends::WorkerSetSpec> sets;
  for (const auto& job : *jobs) {
    if (job.timeout_s > 0 && clock_.NowSeconds() - job.start_time > job.timeout_s) {
      auto ended = queue_.EndJob(job.id, "status_timed_out", clock_.NowSeconds());
      if (ended.ok() && *ended) {
        logs_.AppendJob(
            job.api_name, job.id,
            absl::StrCat("job timed out after ", job.timeout_s, " s; stopping its workers"));
      }
      continue;
    }
    auto api = specs_.Find(store_, job.api_name);
    auto counts = queue_.Counts(job.id);
    if (!api.ok() || !api->has_value() || !counts.ok()) continue;
    int64_t remaining = counts->queued + counts->leased;
    backends::WorkerSetSpec set;
    set.job_id = job.id;
    set.api_name = job.api_name;
    set.api_id = job.api_id;
    // Workers are needed while batches remain, or one to run on_job_complete.
    set.running = remaining > 0 ? static_cast<int>(std::min<int64_t>(job.workers, remaining)) : 1;
    set.max_failures = kMaxFailuresPerWorker * job.workers;
    const ApiSpec& spec = ***api;
    set.api = spec.config;
    set.project_dir = spec.project_dir;
    set.job_spec = json::parse(job.spec_json, nullptr, false);
    set.python = PythonFor(*spec.config, options_.default_python);
    set.operator_url = options_.operator_url;
    set.log_path = logs_.JobLogPath(job.api_name, job.id);
    set.env["CORTEX_OPERATOR_TOKEN"] = options_.token;
    set.env["CORTEX_JOB_ID"] = job.id;
    sets.push_back(std::move(set));
  }

  for (const auto& status : backend_.SyncWorkerSets(sets)) {
    auto job = queue_.GetJob(status.job_id);
    if (!job.ok() || !job->has_value()) continue;
    const store::JobRecord& record = **job;
    for (const auto& event : status.events) logs_.AppendJob(record.api_name, record.id, event);
    for (const auto& exit : status.exits) {
      if (exit.exit_code == 0) continue;
      // Its batches return to the queue now, not when their leases run out.
      (void)queue_.ReleaseWorker(record.id, exit.worker_id);
      if (record.completion_worker == exit.worker_id) (void)queue_.ReleaseCompletion(record.id);
      logs_.AppendJob(record.api_name, record.id,
                      absl::StrCat("worker ", exit.worker_id, " ", exit.reason));
    }
    if (!JobEnded(record.status) && status.failed >= kMaxFailuresPerWorker * record.workers) {
      auto ended = queue_.EndJob(record.id, "status_worker_error", clock_.NowSeconds());
      if (ended.ok() && *ended) {
        logs_.AppendJob(record.api_name, record.id,
                        absl::StrCat("job failed: its workers failed ", status.failed,
                                     " times (see the traceback above)"));
      }
    }
  }
}

}  // namespace cortex::op
