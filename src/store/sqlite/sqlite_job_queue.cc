#include "store/sqlite/sqlite_job_queue.h"

#include <sqlite3.h>

#include "store/sqlite/statement.h"

namespace cortex::store {
namespace {

using internal::Exec;
using internal::InTransaction;
using internal::Statement;

// Batch states.
constexpr int64_t kQueued = 0, kLeased = 1, kSucceeded = 2, kDead = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, api_name TEXT NOT NULL, api_id TEXT NOT NULL, spec_json TEXT NOT NULL,
  status TEXT NOT NULL, workers INTEGER NOT NULL, total_batches INTEGER NOT NULL,
  start_time INTEGER NOT NULL, end_time INTEGER NOT NULL, timeout_s INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL, completion_claimed INTEGER NOT NULL,
  completion_claimed_at INTEGER NOT NULL, completion_worker TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS job_workers (
  id TEXT PRIMARY KEY, job_id TEXT NOT NULL, api_name TEXT NOT NULL, pid INTEGER NOT NULL,
  state TEXT NOT NULL, started_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, idx INTEGER NOT NULL, payload TEXT NOT NULL,
  state INTEGER NOT NULL, attempts INTEGER NOT NULL, lease_until INTEGER NOT NULL,
  worker TEXT NOT NULL, error TEXT NOT NULL, seconds REAL NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_job_state ON batches (job_id, state, id);
)sql";

constexpr const char* kJobColumns =
    "id, api_name, api_id, spec_json, status, workers, total_batches, start_time, end_time, "
    "timeout_s, max_attempts, completion_claimed, completion_claimed_at, completion_worker";

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobQueue>> SqliteJobQueue::Open(const std::string& path) {
  auto db = internal::OpenDatabase(path, kSchema);
  if (!db.ok()) return db.status();
  return std::unique_ptr<SqliteJobQueue>(new SqliteJobQueue(*db));
}

SqliteJobQueue::~SqliteJobQueue() { sqlite3_close(db_); }

absl::Status SqliteJobQueue::CreateJob(const JobRecord& job,
                                       const std::vector<std::string>& batches) {
  std::lock_guard lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    std::string sql = absl::StrCat("INSERT INTO jobs (", kJobColumns,
                                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Statement put(db_, sql.c_str());
    put.Bind(1, job.id).Bind(2, job.api_name).Bind(3, job.api_id).Bind(4, job.spec_json);
    put.Bind(5, job.status).Bind(6, int64_t{job.workers}).Bind(7, job.total_batches);
    put.Bind(8, job.start_time).Bind(9, job.end_time).Bind(10, job.timeout_s);
    put.Bind(11, int64_t{job.max_attempts}).Bind(12, int64_t{job.completion_claimed ? 1 : 0});
    put.Bind(13, job.completion_claimed_at).Bind(14, job.completion_worker);
    if (put.Step() != SQLITE_DONE) return put.Error("creating job " + job.id);
    Statement add(db_,
                  "INSERT INTO batches (job_id, idx, payload, state, attempts, lease_until, "
                  "worker, error, seconds) VALUES (?, ?, ?, 0, 0, 0, '', '', 0)");
    for (size_t i = 0; i < batches.size(); ++i) {
      add.Reset();
      add.Bind(1, job.id).Bind(2, static_cast<int64_t>(i)).Bind(3, batches[i]);
      if (add.Step() != SQLITE_DONE) return add.Error("enqueuing batches of job " + job.id);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobQueue::QueryJobs(const char* where,
                                                                 const std::string& arg) {
  std::string sql =
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs ", where, " ORDER BY start_time DESC, id");
  Statement q(db_, sql.c_str());
  q.Bind(1, arg);
  std::vector<JobRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    JobRecord j;
    j.id = q.Text(0);
    j.api_name = q.Text(1);
    j.api_id = q.Text(2);
    j.spec_json = q.Text(3);
    j.status = q.Text(4);
    j.workers = static_cast<int>(q.Int(5));
    j.total_batches = q.Int(6);
    j.start_time = q.Int(7);
    j.end_time = q.Int(8);
    j.timeout_s = q.Int(9);
    j.max_attempts = static_cast<int>(q.Int(10));
    j.completion_claimed = q.Int(11) != 0;
    j.completion_claimed_at = q.Int(12);
    j.completion_worker = q.Text(13);
    out.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) return q.Error("listing jobs");
  return out;
}

absl::StatusOr<std::optional<JobRecord>> SqliteJobQueue::GetJob(const std::string& id) {
  std::lock_guard lock(mu_);
  return internal::First(QueryJobs("WHERE id = ?", id));
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobQueue::ListJobs(const std::string& api_name) {
  std::lock_guard lock(mu_);
  return QueryJobs("WHERE api_name = ?", api_name);
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobQueue::ListActiveJobs() {
  std::lock_guard lock(mu_);
  return QueryJobs("WHERE status IN ('status_running', 'status_enqueuing') AND ?1 = ?1", "");
}

absl::StatusOr<bool> SqliteJobQueue::EndJob(const std::string& id, const std::string& status,
                                            int64_t end_time) {
  std::lock_guard lock(mu_);
  Statement put(db_,
                "UPDATE jobs SET status = ?, end_time = ? WHERE id = ? "
                "AND status IN ('status_running', 'status_enqueuing')");
  put.Bind(1, status).Bind(2, end_time).Bind(3, id);
  if (put.Step() != SQLITE_DONE) return put.Error("ending job " + id);
  return sqlite3_changes(db_) > 0;
}

absl::Status SqliteJobQueue::DeleteJobs(const std::string& api_name) {
  std::lock_guard lock(mu_);
  return InTransaction(db_, [&]() -> absl::Status {
    for (const char* sql :
         {"DELETE FROM batches WHERE job_id IN (SELECT id FROM jobs WHERE api_name = ?)",
          "DELETE FROM jobs WHERE api_name = ?"}) {
      Statement del(db_, sql);
      del.Bind(1, api_name);
      if (del.Step() != SQLITE_DONE) return del.Error("deleting jobs of " + api_name);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<Lease>> SqliteJobQueue::LeaseBatch(const std::string& job_id,
                                                                const std::string& worker,
                                                                int64_t now_ms, int64_t lease_ms) {
  std::lock_guard lock(mu_);
  std::optional<Lease> lease;
  absl::Status st = InTransaction(db_, [&]() -> absl::Status {
    // Expired leases: their worker died or hung. Try again, or dead-letter.
    Statement expire(db_,
                     "UPDATE batches SET state = CASE WHEN attempts >= (SELECT max_attempts FROM "
                     "jobs WHERE id = ?1) THEN 3 ELSE 0 END, error = CASE WHEN attempts >= "
                     "(SELECT max_attempts FROM jobs WHERE id = ?1) THEN 'lease expired (the "
                     "worker died or took too long)' ELSE error END WHERE job_id = ?1 AND state "
                     "= 1 AND lease_until < ?2");
    expire.Bind(1, job_id).Bind(2, now_ms);
    if (expire.Step() != SQLITE_DONE) return expire.Error("expiring leases");
    Statement take(db_,
                   "UPDATE batches SET state = 1, attempts = attempts + 1, lease_until = ?1, "
                   "worker = ?2 WHERE id = (SELECT id FROM batches WHERE job_id = ?3 AND state = "
                   "0 ORDER BY id LIMIT 1) RETURNING id, idx, payload, attempts");
    take.Bind(1, now_ms + lease_ms).Bind(2, worker).Bind(3, job_id);
    int rc = take.Step();
    if (rc == SQLITE_ROW) {
      lease = Lease{take.Int(0), take.Int(1), take.Text(2), static_cast<int>(take.Int(3))};
      rc = take.Step();
    }
    if (rc != SQLITE_DONE) return take.Error("leasing a batch");
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return lease;
}

absl::StatusOr<bool> SqliteJobQueue::RenewLease(int64_t batch_id, const std::string& worker,
                                                int64_t until_ms) {
  std::lock_guard lock(mu_);
  Statement renew(db_,
                  "UPDATE batches SET lease_until = ? WHERE id = ? AND worker = ? AND state = 1");
  renew.Bind(1, until_ms).Bind(2, batch_id).Bind(3, worker);
  if (renew.Step() != SQLITE_DONE) return renew.Error("renewing a lease");
  return sqlite3_changes(db_) > 0;
}

absl::Status SqliteJobQueue::AckBatch(int64_t batch_id, const std::string& worker, double seconds) {
  std::lock_guard lock(mu_);
  // A late ack from a worker whose lease expired still counts: the batch was processed.
  Statement ack(db_,
                "UPDATE batches SET state = 2, seconds = ?, worker = ? WHERE id = ? AND state IN "
                "(0, 1)");
  ack.Bind(1, seconds).Bind(2, worker).Bind(3, batch_id);
  if (ack.Step() != SQLITE_DONE) return ack.Error("acking a batch");
  return absl::OkStatus();
}

absl::Status SqliteJobQueue::FailBatch(int64_t batch_id, const std::string& worker,
                                       const std::string& error) {
  std::lock_guard lock(mu_);
  Statement fail(db_,
                 "UPDATE batches SET state = CASE WHEN attempts >= (SELECT max_attempts FROM jobs "
                 "WHERE jobs.id = batches.job_id) THEN 3 ELSE 0 END, error = ? WHERE id = ? AND "
                 "worker = ? AND state = 1");
  fail.Bind(1, error).Bind(2, batch_id).Bind(3, worker);
  if (fail.Step() != SQLITE_DONE) return fail.Error("failing a batch");
  return absl::OkStatus();
}

absl::Status SqliteJobQueue::ReleaseWorker(const std::string& job_id, const std::string& worker) {
  std::lock_guard lock(mu_);
  Statement release(db_,
                    "UPDATE batches SET state = CASE WHEN attempts >= (SELECT max_attempts FROM "
                    "jobs WHERE id = ?1) THEN 3 ELSE 0 END, error = 'the worker process died' "
                    "WHERE job_id = ?1 AND worker = ?2 AND state = 1");
  release.Bind(1, job_id).Bind(2, worker);
  if (release.Step() != SQLITE_DONE) return release.Error("releasing a worker's batches");
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteJobQueue::ClaimCompletion(const std::string& job_id,
                                                     const std::string& worker, int64_t now_ms,
                                                     int64_t stale_before_ms) {
  std::lock_guard lock(mu_);
  Statement claim(db_,
                  "UPDATE jobs SET completion_claimed = 1, completion_claimed_at = ?, "
                  "completion_worker = ? WHERE id = ? AND (completion_claimed = 0 OR "
                  "completion_claimed_at < ?)");
  claim.Bind(1, now_ms).Bind(2, worker).Bind(3, job_id).Bind(4, stale_before_ms);
  if (claim.Step() != SQLITE_DONE) return claim.Error("claiming on_job_complete");
  return sqlite3_changes(db_) > 0;
}

absl::Status SqliteJobQueue::ReleaseCompletion(const std::string& job_id) {
  std::lock_guard lock(mu_);
  Statement release(db_,
                    "UPDATE jobs SET completion_claimed = 0, completion_worker = '' WHERE id = ?");
  release.Bind(1, job_id);
  if (release.Step() != SQLITE_DONE) return release.Error("releasing on_job_complete");
  return absl::OkStatus();
}

absl::Status SqliteJobQueue::PutWorker(const WorkerRecord& w) {
  std::lock_guard lock(mu_);
  Statement put(db_,
                "INSERT OR REPLACE INTO job_workers (id, job_id, api_name, pid, state, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?)");
  put.Bind(1, w.id).Bind(2, w.job_id).Bind(3, w.api_name).Bind(4, int64_t{w.pid});
  put.Bind(5, w.state).Bind(6, w.started_at);
  if (put.Step() != SQLITE_DONE) return put.Error("storing worker " + w.id);
  return absl::OkStatus();
}

absl::Status SqliteJobQueue::DeleteWorker(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement del(db_, "DELETE FROM job_workers WHERE id = ?");
  del.Bind(1, id);
  if (del.Step() != SQLITE_DONE) return del.Error("deleting worker " + id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<WorkerRecord>> SqliteJobQueue::ListWorkers() {
  std::lock_guard lock(mu_);
  Statement q(db_,
              "SELECT id, job_id, api_name, pid, state, started_at FROM job_workers ORDER BY id");
  std::vector<WorkerRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    out.push_back(
        {q.Text(0), q.Text(1), q.Text(2), static_cast<pid_t>(q.Int(3)), q.Text(4), q.Int(5)});
  }
  if (rc != SQLITE_DONE) return q.Error("listing workers");
  return out;
}

absl::StatusOr<BatchCounts> SqliteJobQueue::Counts(const std::string& job_id) {
  std::lock_guard lock(mu_);
  Statement q(db_,
              "SELECT state, COUNT(*), SUM(seconds) FROM batches WHERE job_id = ? GROUP BY state");
  q.Bind(1, job_id);
  BatchCounts counts;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    int64_t state = q.Int(0), n = q.Int(1);
    if (state == kQueued) counts.queued = n;
    if (state == kLeased) counts.leased = n;
    if (state == kSucceeded) {
      counts.succeeded = n;
      counts.time_sum_s = q.Double(2);
    }
    if (state == kDead) counts.dead = n;
  }
  if (rc != SQLITE_DONE) return q.Error("counting batches");
  return counts;
}

absl::StatusOr<std::vector<DeadBatch>> SqliteJobQueue::DeadLetters(const std::string& job_id) {
  std::lock_guard lock(mu_);
  Statement q(db_,
              "SELECT idx, attempts, error FROM batches WHERE job_id = ? AND state = 3 "
              "ORDER BY idx");
  q.Bind(1, job_id);
  std::vector<DeadBatch> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    out.push_back({q.Int(0), static_cast<int>(q.Int(1)), q.Text(2)});
  }
  if (rc != SQLITE_DONE) return q.Error("listing dead letters");
  return out;
}

}  // namespace cortex::store
