#include "operator/lease_service.h"

#include <absl/strings/str_cat.h>

#include "common/job_status.h"
#include "common/json_fields.h"
#include "common/status.h"

namespace cortex::op {

using nlohmann::json;
using store::JobRecord;

namespace {

constexpr int64_t kStaleCompletionMs = 10 * 60'000;  // a claim older than this is taken over

}  // namespace

LeaseService::LeaseService(store::JobQueue& queue, const ApiLogs& logs, const Clock& clock,
                           int64_t lease_ms)
    : queue_(queue), logs_(logs), clock_(clock), lease_ms_(lease_ms) {}

absl::StatusOr<json> LeaseService::Call(const std::string& job_id, const std::string& action,
                                        const json& body) {
  std::string worker = StringField(body, "worker");
  if (worker.empty()) return absl::InvalidArgumentError("worker must be given");
  ASSIGN_OR_RETURN(std::optional<JobRecord> job, queue_.GetJob(job_id));
  if (!job) return json{{"done", true}};  // deleted: the worker exits
  int64_t now = clock_.NowMs();
  int64_t batch_id = IntField(body, "batch_id");
  if (action == "lease") {
    if (JobEnded(job->status)) return json{{"done", true}};
    ASSIGN_OR_RETURN(std::optional<store::Lease> lease,
                     queue_.LeaseBatch(job_id, worker, now, lease_ms_));
    if (lease) {
      return json{{"batch",
                   {{"id", lease->batch_id},
                    {"index", lease->index},
                    {"attempt", lease->attempt},
                    {"payload", json::parse(lease->payload, nullptr, false)}}}};
    }
    ASSIGN_OR_RETURN(store::BatchCounts counts, queue_.Counts(job_id));
    if (counts.queued + counts.leased > 0) return json{{"wait_s", 1}};
    // Every batch is done: exactly one worker runs on_job_complete.
    ASSIGN_OR_RETURN(bool claimed,
                     queue_.ClaimCompletion(job_id, worker, now, now - kStaleCompletionMs));
    return json{{"done", true}, {"on_job_complete", claimed}};
  }
  if (action == "renew") {
    ASSIGN_OR_RETURN(bool renewed, queue_.RenewLease(batch_id, worker, now + lease_ms_));
    return json{{"renewed", renewed}};
  }
  if (action == "ack") {
    RETURN_IF_ERROR(queue_.AckBatch(batch_id, worker, NumberField(body, "seconds")));
    return json{{"ok", true}};
  }
  if (action == "fail") {
    std::string error = StringField(body, "error", "unknown error");
    RETURN_IF_ERROR(queue_.FailBatch(batch_id, worker, error));
    return json{{"ok", true}};
  }
  if (action == "complete") {
    if (job->completion_worker != worker || JobEnded(job->status)) return json{{"ok", true}};
    ASSIGN_OR_RETURN(store::BatchCounts counts, queue_.Counts(job_id));
    job->status = counts.dead > 0 ? "status_completed_with_failures" : "status_succeeded";
    ASSIGN_OR_RETURN(bool ended, queue_.EndJob(job_id, job->status, clock_.NowSeconds()));
    if (!ended) return json{{"ok", true}};  // stopped or timed out meanwhile: that stands
    logs_.AppendJob(job->api_name, job_id,
                    absl::StrCat("job ", JobStatusText(job->status), ": ", counts.succeeded,
                                 " batches succeeded, ", counts.dead, " failed"));
    return json{{"ok", true}};
  }
  return absl::NotFoundError(absl::StrCat("unknown worker action ", action));
}

}  // namespace cortex::op
