// JobQueue on SQLite (WAL), in the operator's state.db beside SqliteStateStore (its own
// connection). Thread-safe: one connection behind a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/job_queue.h"

struct sqlite3;

namespace cortex::store {

class SqliteJobQueue : public JobQueue {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteJobQueue>> Open(const std::string& path);
  ~SqliteJobQueue() override;

  absl::Status CreateJob(const JobRecord& job, const std::vector<std::string>& batches) override;
  absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& id) override;
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& api_name) override;
  absl::StatusOr<std::vector<JobRecord>> ListActiveJobs() override;
  absl::StatusOr<bool> EndJob(const std::string& id, const std::string& status,
                              int64_t end_time) override;
  absl::Status DeleteJobs(const std::string& api_name) override;
  absl::StatusOr<std::optional<Lease>> LeaseBatch(const std::string& job_id,
                                                  const std::string& worker, int64_t now_ms,
                                                  int64_t lease_ms) override;
  absl::StatusOr<bool> RenewLease(int64_t batch_id, const std::string& worker,
                                  int64_t until_ms) override;
  absl::Status AckBatch(int64_t batch_id, const std::string& worker, double seconds) override;
  absl::Status FailBatch(int64_t batch_id, const std::string& worker,
                         const std::string& error) override;
  absl::Status ReleaseWorker(const std::string& job_id, const std::string& worker) override;
  absl::StatusOr<bool> ClaimCompletion(const std::string& job_id, const std::string& worker,
                                       int64_t now_ms, int64_t stale_before_ms) override;
  absl::Status ReleaseCompletion(const std::string& job_id) override;
  absl::Status PutWorker(const WorkerRecord& worker) override;
  absl::Status DeleteWorker(const std::string& id) override;
  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() override;
  absl::StatusOr<BatchCounts> Counts(const std::string& job_id) override;
  absl::StatusOr<std::vector<DeadBatch>> DeadLetters(const std::string& job_id) override;

 private:
  explicit SqliteJobQueue(sqlite3* db) : db_(db) {}
  absl::StatusOr<std::vector<JobRecord>> QueryJobs(const char* where, const std::string& arg);

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace cortex::store
