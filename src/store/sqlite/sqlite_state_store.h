// StateStore on one SQLite file in WAL mode. Thread-safe (one connection behind a mutex: the
// control plane's write rate is tiny, and one writer is what SQLite allows anyway).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/state_store.h"

struct sqlite3;

namespace cortex::store {

class SqliteStateStore : public StateStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(const std::string& path);
  ~SqliteStateStore() override;

  absl::Status PutApi(const ApiRecord& api) override;
  absl::StatusOr<std::optional<ApiRecord>> GetApi(const std::string& name) override;
  absl::StatusOr<std::vector<ApiRecord>> ListApis() override;
  absl::Status DeleteApi(const std::string& name) override;
  absl::StatusOr<std::vector<ApiVersion>> ListVersions(const std::string& name, int limit) override;
  absl::Status PutReplica(const ReplicaRecord& replica) override;
  absl::StatusOr<bool> UpdateReplica(const ReplicaRecord& replica, ReplicaState expected) override;
  absl::Status DeleteReplica(const std::string& id) override;
  absl::StatusOr<std::vector<ReplicaRecord>> ListReplicas() override;

 private:
  explicit SqliteStateStore(sqlite3* db) : db_(db) {}
  absl::StatusOr<std::vector<ApiRecord>> QueryApis(const std::string& where,
                                                   const std::string& arg);

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace cortex::store
