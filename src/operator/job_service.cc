#include "operator/job_service.h"

#include <absl/strings/str_cat.h>

#include "common/job_status.h"
#include "common/network_json.h"
#include "common/status.h"
#include "common/util.h"
#include "operator/job_planner.h"

namespace cortex::op {

using nlohmann::json;
using store::JobRecord;

JobService::JobService(BatchOptions options, store::JobQueue& queue, const ApiLogs& logs,
                       const Clock& clock)
    : options_(std::move(options)), queue_(queue), logs_(logs), clock_(clock) {}

absl::StatusOr<json> JobService::Submit(const ApiSpec& api, const std::string& body, bool dry_run,
                                        std::string* dry_run_text) {
  if (body.size() > options_.max_submission_bytes) {
    return WithHttpStatus(absl::InvalidArgumentError(absl::StrCat(
                              "the job submission is ", body.size(), " bytes; the limit is ",
                              FormatBytes(options_.max_submission_bytes))),
                          413);
  }
  ASSIGN_OR_RETURN(json submission,
                   ParseNetworkJson(body, "the job submission", options_.plan_limits.json_depth));
  ASSIGN_OR_RETURN(JobPlan plan, PlanJob(submission, options_.plan_limits));
  int64_t timeout_s = 0;
  if (auto t = submission.find("timeout"); t != submission.end() && !t->is_null()) {
    if (t->is_number_integer() && t->get<int64_t>() > 0) {
      timeout_s = t->get<int64_t>();
    } else if (t->is_string()) {
      auto parsed = config::ParseDurationSeconds(t->get<std::string>());
      timeout_s = parsed.ok() ? *parsed : 0;
    }
    if (timeout_s <= 0) {
      return absl::InvalidArgumentError(
          "timeout: must be a positive number of seconds or a duration like \"30m\"");
    }
  }
  if (dry_run) {
    std::string text;
    for (const auto& f : plan.listed) absl::StrAppend(&text, f, "\n");
    absl::StrAppend(&text, "validations passed\n");
    *dry_run_text = text;
    return json::object();
  }
  JobRecord job;
  job.id = DecreasingHexId();
  job.api_name = api.name();
  job.api_id = api.record.api_id;
  job.workers = submission["workers"].get<int>();
  job.total_batches = static_cast<int64_t>(plan.batches.size());
  job.start_time = clock_.NowSeconds();
  job.timeout_s = timeout_s;
  job.max_attempts = options_.max_attempts;
  json spec = {{"job_id", job.id},
               {"api_name", api.name()},
               {"workers", job.workers},
               {"config", submission.value("config", json::object())},
               {"api_id", api.record.api_id},
               {"spec_id", api.record.spec_id},
               {"predictor_id", api.record.predictor_id},
               {"sqs_url", nullptr},
               {"total_batch_count", job.total_batches},
               {"start_time", Rfc3339(job.start_time)},  // v0.24's time.Time
               {"timeout", timeout_s > 0 ? json(timeout_s) : json()},
               {"max_attempts", job.max_attempts}};
  if (spec["config"].is_null()) spec["config"] = json::object();
  job.spec_json = spec.dump();
  RETURN_IF_ERROR(queue_.CreateJob(job, plan.batches));
  logs_.AppendJob(job.api_name, job.id,
                  absl::StrCat("job ", job.id, " submitted: ", job.total_batches, " batches, ",
                               job.workers, " worker(s)"));
  return spec;
}

json JobService::JobStatus(const JobRecord& job) {
  json status = json::parse(job.spec_json, nullptr, false);
  if (!status.is_object()) status = json{{"job_id", job.id}, {"api_name", job.api_name}};
  status["status"] = job.status;
  status["start_time"] = Rfc3339(job.start_time);  // also for jobs stored in unix seconds
  status["end_time"] = job.end_time > 0 ? json(Rfc3339(job.end_time)) : json();
  auto counts = queue_.Counts(job.id);
  if (counts.ok()) {
    status["batches_in_queue"] = JobEnded(job.status) ? 0 : counts->queued + counts->leased;
    status["batch_metrics"] = {
        {"succeeded", counts->succeeded},
        {"failed", counts->dead},
        {"average_time_per_batch",
         counts->succeeded > 0 ? json(counts->time_sum_s / counts->succeeded) : json()}};
  }
  auto dead = queue_.DeadLetters(job.id);
  if (dead.ok()) {
    json letters = json::array();
    for (const auto& d : *dead) {
      letters.push_back({{"batch_index", d.index}, {"attempts", d.attempts}, {"error", d.error}});
    }
    status["dead_letters"] = letters;
  }
  json workers = {{"pending", 0}, {"initializing", 0}, {"running", 0}, {"succeeded", 0},
                  {"failed", 0},  {"stalled", 0},      {"unknown", 0}};
  if (auto list = queue_.ListWorkers(); list.ok()) {
    for (const auto& w : *list) {
      if (w.job_id != job.id) continue;
      std::string key = w.state == "running"     ? "running"
                        : w.state == "succeeded" ? "succeeded"
                                                 : "failed";
      workers[key] = workers[key].get<int>() + 1;
    }
  }
  status["worker_counts"] = JobEnded(job.status) ? json() : workers;
  return status;
}

absl::StatusOr<json> JobService::Describe(const ApiSpec& api, const std::string& job_id,
                                          const std::string& endpoint, bool redact_secrets) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_.GetJob(job_id));
  if (!job || job->api_name != api.name()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " was not found for ", api.name()));
  }
  json api_spec = api.config->ToJson();
  if (redact_secrets && api_spec.contains("predictor")) {
    // Anyone who can reach the endpoint may ask for a job: environment values and the
    // predictor's config (passwords, keys) are for the cluster's owner only.
    for (const char* section : {"env", "config"}) {
      json& values = api_spec["predictor"][section];
      if (!values.is_object()) continue;
      for (auto& [key, value] : values.items()) value = "<redacted>";
    }
  }
  return json{{"job_status", JobStatus(*job)},
              {"api_spec", std::move(api_spec)},
              {"endpoint", absl::StrCat(endpoint, "/", job_id)}};
}

absl::StatusOr<json> JobService::List(const std::string& api_name) {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, queue_.ListJobs(api_name));
  json out = json::array();
  for (const auto& job : jobs) out.push_back(JobStatus(job));
  return out;
}

absl::StatusOr<json> JobService::Stop(const std::string& api_name, const std::string& job_id) {
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_.GetJob(job_id));
  if (!job || job->api_name != api_name) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " was not found for ", api_name));
  }
  if (JobEnded(job->status)) {
    return absl::FailedPreconditionError("cannot stop batch job because it is not in progress");
  }
  ASSIGN_OR_RETURN(bool stopped, queue_.EndJob(job_id, "status_stopped", clock_.NowSeconds()));
  if (!stopped) {  // it ended meanwhile (completed, timed out)
    return absl::FailedPreconditionError("cannot stop batch job because it is not in progress");
  }
  logs_.AppendJob(api_name, job_id, "job stopped by the user");
  return json{{"message", absl::StrCat("stopped job ", job_id)}};
}

absl::Status JobService::DeleteApi(const std::string& api_name) {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, queue_.ListJobs(api_name));
  for (auto job : jobs) {
    if (JobEnded(job.status)) continue;
    RETURN_IF_ERROR(queue_.EndJob(job.id, "status_stopped", clock_.NowSeconds()).status());
  }
  // Worker records stay until the control loop has stopped their processes.
  return queue_.DeleteJobs(api_name);
}

}  // namespace cortex::op
