#include "backends/local/worker_controller.h"

#include <absl/strings/str_cat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/instance_spec.h"
#include "common/status.h"
#include "common/util.h"

namespace cortex::backends::local {

using nlohmann::json;

WorkerController::WorkerController(WorkerControllerOptions options, store::JobQueue& records,
                                   InstanceRunner& runner, const Clock& clock)
    : options_(std::move(options)), records_(records), runner_(runner), clock_(clock) {}

std::vector<WorkerSetStatus> WorkerController::Sync(const std::vector<WorkerSetSpec>& sets) {
  std::map<std::string, const WorkerSetSpec*> by_job;
  std::map<std::string, WorkerSetStatus> status;
  for (const auto& set : sets) {
    by_job[set.job_id] = &set;
    status[set.job_id].job_id = set.job_id;
  }
  auto workers = records_.ListWorkers();
  if (!workers.ok()) return {};
  std::vector<WorkerSetStatus> gone;  // sets no longer wanted, with the deaths found in them
  for (auto& w : *workers) {
    InstanceProbe probe;
    if (w.state == "running") probe = runner_.Probe(w.id, w.pid, 0);
    if (by_job.count(w.job_id) == 0) {
      // The job ended or was deleted: its workers go (a death is still worth reporting).
      if (w.state == "running" && !probe.alive && probe.exit_code != 0) {
        if (gone.empty() || gone.back().job_id != w.job_id) {
          WorkerSetStatus dead;
          dead.job_id = w.job_id;
          gone.push_back(std::move(dead));
        }
        gone.back().exits.push_back({w.id, probe.exit_code, probe.reason});
      }
      if (probe.alive) runner_.Stop(w.id, w.pid, options_.stop_grace_ms);
      (void)records_.DeleteWorker(w.id);
      // The job's files go with its last worker (its models' manifest keeps them in the cache).
      std::error_code ignored;
      std::filesystem::remove(absl::StrCat(options_.data_dir, "/run/job-", w.job_id, ".json"),
                              ignored);
      std::filesystem::remove(
          absl::StrCat(options_.data_dir, "/run/job-", w.job_id, ".models.json"), ignored);
      continue;
    }
    WorkerSetStatus& s = status[w.job_id];
    if (w.state == "running" && probe.alive) {
      ++s.running;
      continue;
    }
    if (w.state == "running") {
      w.state = probe.exit_code == 0 ? "succeeded" : "failed";
      (void)records_.PutWorker(w);
      s.exits.push_back({w.id, probe.exit_code, probe.reason});
    }
    (w.state == "succeeded" ? s.succeeded : s.failed) += 1;
  }
  std::vector<WorkerSetStatus> out;
  for (const auto& set : sets) {
    WorkerSetStatus& s = status[set.job_id];
    bool crash_looping = set.max_failures > 0 && s.failed >= set.max_failures;
    for (int i = s.running; i < set.running && !crash_looping; ++i) {
      if (absl::Status st = Start(set, s.events); !st.ok()) {
        s.events.push_back(std::string(st.message()));
        break;
      }
      ++s.running;
    }
    out.push_back(std::move(s));
  }
  for (auto& s : gone) out.push_back(std::move(s));
  return out;
}

absl::Status WorkerController::Start(const WorkerSetSpec& set, std::vector<std::string>& events) {
  // Every worker of the job fetches the models once, into the cluster's cache.
  json spec =
      WorkerSpecFile(set.api ? set.api->ToJson() : json::object(),
                     {set.project_dir, absl::StrCat(options_.data_dir, "/models"),
                      absl::StrCat(options_.data_dir, "/run/job-", set.job_id, ".models.json")},
                     set.job_spec);
  std::string spec_path = absl::StrCat(options_.data_dir, "/run/job-", set.job_id, ".json");
  RETURN_IF_ERROR(WriteFileAtomic(spec_path, spec.dump()));
  store::WorkerRecord worker;
  worker.id = absl::StrCat(set.job_id, "-", RandomId(5));
  worker.job_id = set.job_id;
  worker.api_name = set.api_name;
  worker.started_at = clock_.NowSeconds();
  WorkerLaunch launch;
  launch.worker_id = worker.id;
  launch.job_id = set.job_id;
  launch.spec_path = spec_path;
  launch.python = set.python;
  launch.operator_url = set.operator_url;
  launch.log_path = set.log_path;
  launch.working_dir = set.project_dir;
  launch.env = set.env;
  ASSIGN_OR_RETURN(worker.pid, runner_.StartWorker(launch));
  events.push_back(absl::StrCat("started worker ", worker.id));
  return records_.PutWorker(worker);
}

void WorkerController::StopAll() {
  auto workers = records_.ListWorkers();
  if (!workers.ok()) return;
  for (const auto& w : *workers) {
    if (w.state == "running") runner_.Stop(w.id, w.pid, options_.stop_grace_ms);
    (void)records_.ReleaseWorker(w.job_id, w.id);
    (void)records_.DeleteWorker(w.id);
  }
}

}  // namespace cortex::backends::local
