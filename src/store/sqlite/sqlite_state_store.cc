#include "store/sqlite/sqlite_state_store.h"

#include <absl/strings/str_cat.h>
#include <sqlite3.h>

#include "store/sqlite/statement.h"

namespace cortex::store {
namespace {

using internal::Statement;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS apis (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, api_id TEXT NOT NULL, spec_id TEXT NOT NULL,
  predictor_id TEXT NOT NULL, deployment_id TEXT NOT NULL, project_id TEXT NOT NULL,
  spec_json TEXT NOT NULL, desired_replicas INTEGER NOT NULL, created_at INTEGER NOT NULL,
  last_updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_versions (
  name TEXT NOT NULL, api_id TEXT NOT NULL, last_updated INTEGER NOT NULL,
  PRIMARY KEY (name, api_id));
CREATE TABLE IF NOT EXISTS replicas (
  id TEXT PRIMARY KEY, api_name TEXT NOT NULL, predictor_id TEXT NOT NULL,
  deployment_id TEXT NOT NULL, pid INTEGER NOT NULL, port INTEGER NOT NULL, state TEXT NOT NULL,
  restarts INTEGER NOT NULL, created_at INTEGER NOT NULL, state_since INTEGER NOT NULL,
  next_start_at INTEGER NOT NULL, ever_ready INTEGER NOT NULL);
)sql";

constexpr const char* kApiColumns =
    "name, kind, api_id, spec_id, predictor_id, deployment_id, project_id, spec_json, "
    "desired_replicas, created_at, last_updated";

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path) {
  auto db = internal::OpenDatabase(path, kSchema);
  if (!db.ok()) return db.status();
  return std::unique_ptr<SqliteStateStore>(new SqliteStateStore(*db));
}

SqliteStateStore::~SqliteStateStore() { sqlite3_close(db_); }

absl::Status SqliteStateStore::PutApi(const ApiRecord& api) {
  std::lock_guard lock(mu_);
  return internal::InTransaction(db_, [&]() -> absl::Status {
    Statement put(db_, R"sql(INSERT OR REPLACE INTO apis (name, kind, api_id, spec_id, predictor_id,
      deployment_id, project_id, spec_json, desired_replicas, created_at, last_updated)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))sql");
    put.Bind(1, api.name).Bind(2, api.kind).Bind(3, api.api_id).Bind(4, api.spec_id);
    put.Bind(5, api.predictor_id).Bind(6, api.deployment_id).Bind(7, api.project_id);
    put.Bind(8, api.spec_json).Bind(9, int64_t{api.desired_replicas}).Bind(10, api.created_at);
    put.Bind(11, api.last_updated);
    Statement version(
        db_, "INSERT OR REPLACE INTO api_versions (name, api_id, last_updated) VALUES (?, ?, ?)");
    version.Bind(1, api.name).Bind(2, api.api_id).Bind(3, api.last_updated);
    if (put.Step() != SQLITE_DONE || version.Step() != SQLITE_DONE) {
      return put.Error("storing api " + api.name);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ApiRecord>> SqliteStateStore::QueryApis(const std::string& where,
                                                                   const std::string& arg) {
  std::string sql = absl::StrCat("SELECT ", kApiColumns, " FROM apis ", where, " ORDER BY name");
  Statement q(db_, sql.c_str());
  if (!arg.empty()) q.Bind(1, arg);
  std::vector<ApiRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    ApiRecord a;
    a.name = q.Text(0);
    a.kind = q.Text(1);
    a.api_id = q.Text(2);
    a.spec_id = q.Text(3);
    a.predictor_id = q.Text(4);
    a.deployment_id = q.Text(5);
    a.project_id = q.Text(6);
    a.spec_json = q.Text(7);
    a.desired_replicas = static_cast<int>(q.Int(8));
    a.created_at = q.Int(9);
    a.last_updated = q.Int(10);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return q.Error("listing apis");
  return out;
}

absl::StatusOr<std::optional<ApiRecord>> SqliteStateStore::GetApi(const std::string& name) {
  std::lock_guard lock(mu_);
  return internal::First(QueryApis("WHERE name = ?", name));
}

absl::StatusOr<std::vector<ApiRecord>> SqliteStateStore::ListApis() {
  std::lock_guard lock(mu_);
  return QueryApis("", "");
}

absl::Status SqliteStateStore::DeleteApi(const std::string& name) {
  std::lock_guard lock(mu_);
  return internal::InTransaction(db_, [&]() -> absl::Status {
    for (const char* sql :
         {"DELETE FROM apis WHERE name = ?", "DELETE FROM api_versions WHERE name = ?"}) {
      Statement del(db_, sql);
      del.Bind(1, name);
      if (del.Step() != SQLITE_DONE) return del.Error("deleting api " + name);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ApiVersion>> SqliteStateStore::ListVersions(const std::string& name,
                                                                       int limit) {
  std::lock_guard lock(mu_);
  Statement q(db_,
              "SELECT api_id, last_updated FROM api_versions WHERE name = ? "
              "ORDER BY last_updated DESC, api_id ASC LIMIT ?");
  q.Bind(1, name).Bind(2, int64_t{limit});
  std::vector<ApiVersion> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back({q.Text(0), q.Int(1)});
  if (rc != SQLITE_DONE) return q.Error("listing versions");
  return out;
}

absl::Status SqliteStateStore::PutReplica(const ReplicaRecord& r) {
  std::lock_guard lock(mu_);
  Statement put(db_, R"sql(INSERT OR REPLACE INTO replicas (id, api_name, predictor_id,
      deployment_id, pid, port, state, restarts, created_at, state_since, next_start_at,
      ever_ready) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?))sql");
  put.Bind(1, r.id).Bind(2, r.api_name).Bind(3, r.predictor_id).Bind(4, r.deployment_id);
  put.Bind(5, int64_t{r.pid}).Bind(6, int64_t{r.port});
  put.Bind(7, std::string(ReplicaStateName(r.state))).Bind(8, int64_t{r.restarts});
  put.Bind(9, r.created_at).Bind(10, r.state_since).Bind(11, r.next_start_at);
  put.Bind(12, int64_t{r.ever_ready ? 1 : 0});
  if (put.Step() != SQLITE_DONE) return put.Error("storing replica " + r.id);
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteStateStore::UpdateReplica(const ReplicaRecord& r,
                                                     ReplicaState expected) {
  std::lock_guard lock(mu_);
  Statement put(db_, R"sql(UPDATE replicas SET api_name = ?, predictor_id = ?, deployment_id = ?,
      pid = ?, port = ?, state = ?, restarts = ?, created_at = ?, state_since = ?,
      next_start_at = ?, ever_ready = ? WHERE id = ? AND state = ?)sql");
  put.Bind(1, r.api_name).Bind(2, r.predictor_id).Bind(3, r.deployment_id);
  put.Bind(4, int64_t{r.pid}).Bind(5, int64_t{r.port});
  put.Bind(6, std::string(ReplicaStateName(r.state))).Bind(7, int64_t{r.restarts});
  put.Bind(8, r.created_at).Bind(9, r.state_since).Bind(10, r.next_start_at);
  put.Bind(11, int64_t{r.ever_ready ? 1 : 0}).Bind(12, r.id);
  put.Bind(13, std::string(ReplicaStateName(expected)));
  if (put.Step() != SQLITE_DONE) return put.Error("updating replica " + r.id);
  return sqlite3_changes(db_) > 0;
}

absl::Status SqliteStateStore::DeleteReplica(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement del(db_, "DELETE FROM replicas WHERE id = ?");
  del.Bind(1, id);
  if (del.Step() != SQLITE_DONE) return del.Error("deleting replica " + id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReplicaRecord>> SqliteStateStore::ListReplicas() {
  std::lock_guard lock(mu_);
  Statement q(db_, R"sql(SELECT id, api_name, predictor_id, deployment_id, pid, port, state,
      restarts, created_at, state_since, next_start_at, ever_ready FROM replicas ORDER BY id)sql");
  std::vector<ReplicaRecord> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    ReplicaRecord r;
    r.id = q.Text(0);
    r.api_name = q.Text(1);
    r.predictor_id = q.Text(2);
    r.deployment_id = q.Text(3);
    r.pid = static_cast<pid_t>(q.Int(4));
    r.port = static_cast<uint16_t>(q.Int(5));
    r.state = ParseReplicaState(q.Text(6)).value_or(ReplicaState::kStarting);
    r.restarts = static_cast<int>(q.Int(7));
    r.created_at = q.Int(8);
    r.state_since = q.Int(9);
    r.next_start_at = q.Int(10);
    r.ever_ready = q.Int(11) != 0;
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return q.Error("listing replicas");
  return out;
}

}  // namespace cortex::store
