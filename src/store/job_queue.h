// Batch jobs and their durable queue of batches (spec §11, with retries and a dead-letter list
// that Cortex lacked).
//
// A batch is queued, then leased by one worker for a visibility timeout, then acked (done) or
// failed. A failed batch, or one whose lease expired (its worker died), is queued again until it
// has been tried `max_attempts` times; then it is dead-lettered with its last error. Nothing is
// lost when a process dies: every transition is one SQLite transaction.
//
// Implemented by SqliteJobQueue (store/sqlite/). Thread-safe.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cortex::store {

struct JobRecord {
  std::string id;
  std::string api_name;
  std::string api_id;
  std::string spec_json;  // the job spec returned to the submitter (workers, config, ...)
  std::string status = "status_running";
  int workers = 1;
  int64_t total_batches = 0;
  int64_t start_time = 0;  // unix seconds
  int64_t end_time = 0;    // 0 while in progress
  int64_t timeout_s = 0;   // 0: none
  int max_attempts = 3;
  bool completion_claimed = false;  // a worker is running on_job_complete
  int64_t completion_claimed_at = 0;
  std::string completion_worker;
};

// A batch worker process of a job.
struct WorkerRecord {
  std::string id;
  std::string job_id;
  std::string api_name;
  pid_t pid = 0;
  std::string state = "running";  // running | succeeded | failed
  int64_t started_at = 0;
};

struct Lease {
  int64_t batch_id = 0;
  int64_t index = 0;
  std::string payload;  // a JSON array
  int attempt = 0;
};

struct BatchCounts {
  int64_t queued = 0, leased = 0, succeeded = 0, dead = 0;
  double time_sum_s = 0;  // of succeeded batches
};

struct DeadBatch {
  int64_t index = 0;
  int attempts = 0;
  std::string error;
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Creates the job and enqueues its batches in one transaction.
  virtual absl::Status CreateJob(const JobRecord& job, const std::vector<std::string>& batches) = 0;
  virtual absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& api_name) = 0;
  // Jobs of every API that are still running.
  virtual absl::StatusOr<std::vector<JobRecord>> ListActiveJobs() = 0;
  // Ends a job that is still in progress with a terminal `status` (compare-and-set: only from
  // status_running or status_enqueuing). False when it had already ended: the first end wins, so
  // a stopped job never turns timed_out later.
  virtual absl::StatusOr<bool> EndJob(const std::string& id, const std::string& status,
                                      int64_t end_time) = 0;
  virtual absl::Status DeleteJobs(const std::string& api_name) = 0;

  // The next batch for `worker`, or nothing when none is queued. Expired leases are taken back
  // first (queued again, or dead-lettered after max_attempts).
  virtual absl::StatusOr<std::optional<Lease>> LeaseBatch(const std::string& job_id,
                                                          const std::string& worker, int64_t now_ms,
                                                          int64_t lease_ms) = 0;
  // Extends a lease the worker still holds (false: it lost it).
  virtual absl::StatusOr<bool> RenewLease(int64_t batch_id, const std::string& worker,
                                          int64_t until_ms) = 0;
  virtual absl::Status AckBatch(int64_t batch_id, const std::string& worker, double seconds) = 0;
  virtual absl::Status FailBatch(int64_t batch_id, const std::string& worker,
                                 const std::string& error) = 0;
  // Returns the batches leased by `worker` to the queue at once (its process died).
  virtual absl::Status ReleaseWorker(const std::string& job_id, const std::string& worker) = 0;

  // Makes `worker` the one that runs on_job_complete, unless another holds a claim newer than
  // `stale_before_ms`. Returns whether this worker got it.
  virtual absl::StatusOr<bool> ClaimCompletion(const std::string& job_id, const std::string& worker,
                                               int64_t now_ms, int64_t stale_before_ms) = 0;
  virtual absl::Status ReleaseCompletion(const std::string& job_id) = 0;

  virtual absl::Status PutWorker(const WorkerRecord& worker) = 0;
  virtual absl::Status DeleteWorker(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() = 0;

  virtual absl::StatusOr<BatchCounts> Counts(const std::string& job_id) = 0;
  virtual absl::StatusOr<std::vector<DeadBatch>> DeadLetters(const std::string& job_id) = 0;
};

}  // namespace cortex::store
