// Batch jobs of BatchAPIs (spec §11, with retries, dead letters, a job timeout and crash
// recovery that Cortex lacked): submission and validation, the queue endpoints the workers call,
// job status, and the control loop that keeps each running job's workers alive.
//
// Thread-safe: the REST handlers and the control loop call in from different threads; the queue
// is transactional and the rest of the state is in it.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "backends/backend.h"
#include "common/job_status.h"
#include "s3/s3_client.h"
#include "store/job_queue.h"
#include "store/state_store.h"

namespace cortex::op {

struct BatchOptions {
  std::string data_dir;
  std::string operator_url;  // what workers call
  std::string token;         // their bearer token
  std::string default_python = "/usr/bin/python3";
  int64_t lease_ms = 30'000;  // workers renew it every 10 s while predict runs
  int max_attempts = 3;       // tries per batch before it is dead-lettered
};

// What a submission is turned into before anything is stored (exposed for tests).
struct JobPlan {
  std::vector<std::string> batches;  // JSON arrays
  std::vector<std::string> listed;   // file_path_lister / delimited_files: the matched files
};

// Validates a submission body (spec §11) and splits it into batches. Local paths (absolute or
// file://) are read from this machine. Errors are the user's, with Cortex's wording.
absl::StatusOr<JobPlan> PlanJob(const nlohmann::json& submission);

// The S3 client jobs use: credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (/AWS_SESSION_TOKEN), AWS_REGION, and CORTEX_S3_ENDPOINT for S3-compatible stores.
s3::Client S3FromEnvironment();

class BatchJobs {
 public:
  BatchJobs(BatchOptions options, std::unique_ptr<store::JobQueue> queue,
            backends::Backend& backend);

  // POST <endpoint>[?dryRun=true]: returns the job spec (or, dry run, the text to send back).
  absl::StatusOr<nlohmann::json> Submit(const store::ApiRecord& api, const std::string& body,
                                        bool dry_run, std::string* dry_run_text);
  // GET <endpoint>?jobID= / <endpoint>/<job_id>.
  absl::StatusOr<nlohmann::json> Describe(const store::ApiRecord& api, const std::string& job_id,
                                          const std::string& endpoint);
  // The jobs of one API, newest first, as DescribeJob documents (without api_spec).
  absl::StatusOr<nlohmann::json> List(const store::ApiRecord& api);
  // DELETE: stops a running job.
  absl::StatusOr<nlohmann::json> Stop(const std::string& api_name, const std::string& job_id);
  // The API is being deleted: its jobs stop and are forgotten.
  absl::Status DeleteApi(const std::string& api_name);

  // The worker protocol (POST /v1/jobs/<job>/<action>, see python/cortex_runtime/batch.py).
  absl::StatusOr<nlohmann::json> WorkerCall(const std::string& job_id, const std::string& action,
                                            const nlohmann::json& body);

  // Cluster down: every worker process stops; their leased batches return to the queue and
  // running jobs get new workers when the operator starts again.
  void StopAllWorkers();

  // Control loop: timeouts, worker crashes and restarts, completion.
  void Reconcile(const std::function<std::optional<store::ApiRecord>(const std::string&)>& api_of);

  std::string JobLogPath(const std::string& api_name, const std::string& job_id) const;

 private:
  nlohmann::json JobStatus(const store::JobRecord& job);
  void JobLog(const store::JobRecord& job, const std::string& line) const;
  absl::Status StartWorker(const store::JobRecord& job, const store::ApiRecord& api);

  BatchOptions options_;
  std::unique_ptr<store::JobQueue> queue_;
  backends::Backend& backend_;
};

}  // namespace cortex::op
