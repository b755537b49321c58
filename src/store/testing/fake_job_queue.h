// An in-memory JobQueue with the SQLite queue's semantics (leases that expire, retries up to
// max_attempts then a dead letter, one on_job_complete claim, compare-and-set job ends). For the
// control plane's unit tests; job_queue_contract_test.cc holds both to the same behaviour.
#pragma once

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <map>

#include "store/job_queue.h"

namespace cortex::store::testing {

class FakeJobQueue : public JobQueue {
 public:
  absl::Status CreateJob(const JobRecord& job, const std::vector<std::string>& batches) override {
    absl::MutexLock lock(&mu_);
    if (jobs_.count(job.id) > 0) return absl::AlreadyExistsError("job " + job.id + " exists");
    jobs_[job.id] = job;
    for (size_t i = 0; i < batches.size(); ++i) {
      Batch b;
      b.id = ++next_batch_id_;
      b.job_id = job.id;
      b.index = static_cast<int64_t>(i);
      b.payload = batches[i];
      batches_[b.id] = b;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return std::optional<JobRecord>();
    return std::optional<JobRecord>(it->second);
  }
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& api_name) override {
    absl::MutexLock lock(&mu_);
    std::vector<JobRecord> out;
    for (const auto& [id, job] : jobs_) {
      if (job.api_name == api_name) out.push_back(job);
    }
    std::stable_sort(out.begin(), out.end(), [](const JobRecord& a, const JobRecord& b) {
      return a.start_time > b.start_time;  // newest first, then by id
    });
    return out;
  }
  absl::StatusOr<std::vector<JobRecord>> ListActiveJobs() override {
    absl::MutexLock lock(&mu_);
    std::vector<JobRecord> out;
    for (const auto& [id, job] : jobs_) {
      if (job.status == "status_running" || job.status == "status_enqueuing") out.push_back(job);
    }
    return out;
  }
  absl::StatusOr<bool> EndJob(const std::string& id, const std::string& status,
                              int64_t end_time) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() ||
        (it->second.status != "status_running" && it->second.status != "status_enqueuing")) {
      return false;
    }
    it->second.status = status;
    it->second.end_time = end_time;
    return true;
  }
  absl::Status DeleteJobs(const std::string& api_name) override {
    absl::MutexLock lock(&mu_);
    for (auto it = batches_.begin(); it != batches_.end();) {  // no lambda: the analysis sees mu_
      auto job = jobs_.find(it->second.job_id);
      bool of_api = job != jobs_.end() && job->second.api_name == api_name;
      it = of_api ? batches_.erase(it) : std::next(it);
    }
    std::erase_if(jobs_, [&](const auto& j) { return j.second.api_name == api_name; });
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<Lease>> LeaseBatch(const std::string& job_id,
                                                  const std::string& worker, int64_t now_ms,
                                                  int64_t lease_ms) override {
    absl::MutexLock lock(&mu_);
    for (auto& [id, b] : batches_) {
      if (b.job_id == job_id && b.state == kLeased && b.lease_until < now_ms) {
        Retry(b, "lease expired (the worker died or took too long)", /*only_if_dead=*/true);
      }
    }
    for (auto& [id, b] : batches_) {
      if (b.job_id != job_id || b.state != kQueued) continue;
      b.state = kLeased;
      ++b.attempts;
      b.lease_until = now_ms + lease_ms;
      b.worker = worker;
      return std::optional<Lease>(Lease{b.id, b.index, b.payload, b.attempts});
    }
    return std::optional<Lease>();
  }
  absl::StatusOr<bool> RenewLease(int64_t batch_id, const std::string& worker,
                                  int64_t until_ms) override {
    absl::MutexLock lock(&mu_);
    auto it = batches_.find(batch_id);
    if (it == batches_.end() || it->second.worker != worker || it->second.state != kLeased) {
      return false;
    }
    it->second.lease_until = until_ms;
    return true;
  }
  absl::Status AckBatch(int64_t batch_id, const std::string& worker, double seconds) override {
    absl::MutexLock lock(&mu_);
    auto it = batches_.find(batch_id);
    if (it != batches_.end() && (it->second.state == kQueued || it->second.state == kLeased)) {
      it->second.state = kSucceeded;  // a late ack still counts: the batch was processed
      it->second.seconds = seconds;
      it->second.worker = worker;
    }
    return absl::OkStatus();
  }
  absl::Status FailBatch(int64_t batch_id, const std::string& worker,
                         const std::string& error) override {
    absl::MutexLock lock(&mu_);
    auto it = batches_.find(batch_id);
    if (it != batches_.end() && it->second.worker == worker && it->second.state == kLeased) {
      Retry(it->second, error);
    }
    return absl::OkStatus();
  }
  absl::Status ReleaseWorker(const std::string& job_id, const std::string& worker) override {
    absl::MutexLock lock(&mu_);
    for (auto& [id, b] : batches_) {
      if (b.job_id == job_id && b.worker == worker && b.state == kLeased) {
        Retry(b, "the worker process died");
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<bool> ClaimCompletion(const std::string& job_id, const std::string& worker,
                                       int64_t now_ms, int64_t stale_before_ms) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return false;
    JobRecord& job = it->second;
    if (job.completion_claimed && job.completion_claimed_at >= stale_before_ms) return false;
    job.completion_claimed = true;
    job.completion_claimed_at = now_ms;
    job.completion_worker = worker;
    return true;
  }
  absl::Status ReleaseCompletion(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    if (auto it = jobs_.find(job_id); it != jobs_.end()) {
      it->second.completion_claimed = false;
      it->second.completion_worker.clear();
    }
    return absl::OkStatus();
  }
  absl::Status PutWorker(const WorkerRecord& worker) override {
    absl::MutexLock lock(&mu_);
    workers_[worker.id] = worker;
    return absl::OkStatus();
  }
  absl::Status DeleteWorker(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    workers_.erase(id);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() override {
    absl::MutexLock lock(&mu_);
    std::vector<WorkerRecord> out;
    for (const auto& [id, w] : workers_) out.push_back(w);
    return out;
  }
  absl::StatusOr<BatchCounts> Counts(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    BatchCounts counts;
    for (const auto& [id, b] : batches_) {
      if (b.job_id != job_id) continue;
      if (b.state == kQueued) ++counts.queued;
      if (b.state == kLeased) ++counts.leased;
      if (b.state == kSucceeded) {
        ++counts.succeeded;
        counts.time_sum_s += b.seconds;
      }
      if (b.state == kDead) ++counts.dead;
    }
    return counts;
  }
  absl::StatusOr<std::vector<DeadBatch>> DeadLetters(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<DeadBatch> out;
    for (const auto& [id, b] : batches_) {
      if (b.job_id == job_id && b.state == kDead) out.push_back({b.index, b.attempts, b.error});
    }
    return out;
  }

 private:
  enum State { kQueued, kLeased, kSucceeded, kDead };
  struct Batch {
    int64_t id = 0;
    std::string job_id;
    int64_t index = 0;
    std::string payload;
    State state = kQueued;
    int attempts = 0;
    int64_t lease_until = 0;
    std::string worker;
    std::string error;
    double seconds = 0;
  };

  // Back to the queue, or dead-lettered after max_attempts (with `error` as its last error).
  void Retry(Batch& b, const std::string& error, bool only_if_dead = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto job = jobs_.find(b.job_id);
    int max_attempts = job == jobs_.end() ? 1 : job->second.max_attempts;
    b.state = b.attempts >= max_attempts ? kDead : kQueued;
    if (!only_if_dead || b.state == kDead) b.error = error;
  }

  absl::Mutex mu_;
  std::map<std::string, JobRecord> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Batch> batches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, WorkerRecord> workers_ ABSL_GUARDED_BY(mu_);
  int64_t next_batch_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cortex::store::testing
