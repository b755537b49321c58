// Batch jobs as users see them (spec §11): submission (validated and planned, then stored with
// all its batches in one transaction), the job documents `cortex get` shows, stop, and the
// cleanup when a BatchAPI is deleted. Thread-safe (the queue is transactional and holds all the
// state). Submissions read files or S3: call them off the I/O thread.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "operator/api_logs.h"
#include "operator/api_spec.h"
#include "operator/job_planner.h"
#include "store/job_queue.h"

namespace cortex::op {

struct BatchOptions {
  std::string operator_url;  // what workers call
  std::string token;         // their bearer token
  std::string default_python = "/usr/bin/python3";
  int64_t lease_ms = 30'000;  // workers renew it every 10 s while predict runs
  int max_attempts = 3;       // tries per batch before it is dead-lettered
  uint64_t max_submission_bytes = 10 << 20;
  PlanLimits plan_limits;  // local paths, batches and workers per job
};

class JobService {
 public:
  JobService(BatchOptions options, store::JobQueue& queue, const ApiLogs& logs, const Clock& clock);

  // POST <endpoint>[?dryRun=true]: returns the job spec (or, dry run, the text to send back).
  absl::StatusOr<nlohmann::json> Submit(const ApiSpec& api, const std::string& body, bool dry_run,
                                        std::string* dry_run_text);
  // GET <endpoint>/<job_id>: the job with the API's spec. `redact_secrets` (a caller without the
  // operator token): the values of predictor.env and predictor.config read "<redacted>".
  absl::StatusOr<nlohmann::json> Describe(const ApiSpec& api, const std::string& job_id,
                                          const std::string& endpoint, bool redact_secrets = false);
  // The API's jobs, newest first (without api_spec).
  absl::StatusOr<nlohmann::json> List(const std::string& api_name);
  absl::StatusOr<nlohmann::json> Stop(const std::string& api_name, const std::string& job_id);
  // The API is being deleted: its jobs stop and are forgotten (the supervisor stops workers).
  absl::Status DeleteApi(const std::string& api_name);

 private:
  nlohmann::json JobStatus(const store::JobRecord& job);

  const BatchOptions options_;
  store::JobQueue& queue_;
  const ApiLogs& logs_;
  const Clock& clock_;
};

}  // namespace cortex::op
