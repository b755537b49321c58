// The operator's durable state: deployed APIs, their version history, and (local provider) the
// replica processes it runs.
//
// Implemented by SqliteStateStore (store/sqlite/) and by FakeStateStore in tests. Every method
// is atomic (one transaction). Thread-safe.
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/replica_state.h"

namespace cortex::store {

struct ApiRecord {
  std::string name;
  std::string kind;    // RealtimeAPI | BatchAPI | TrafficSplitter
  std::string api_id;  // <decreasing hex>-<deployment_id>-<spec_id>
  std::string spec_id;
  std::string predictor_id;
  std::string deployment_id;  // kept across updates; refresh replaces it
  std::string project_id;
  std::string spec_json;  // the defaulted config (ApiConfig::ToJson) plus ids
  int desired_replicas = 1;
  int64_t created_at = 0;  // unix seconds
  int64_t last_updated = 0;
};

struct ApiVersion {
  std::string api_id;
  int64_t last_updated = 0;
};

using cortex::ReplicaState;

// The local provider's record of one replica process (backends/local/replica_controller.h).
struct ReplicaRecord {
  std::string id;
  std::string api_name;
  std::string predictor_id;
  std::string deployment_id;
  pid_t pid = 0;
  uint16_t port = 0;
  ReplicaState state = ReplicaState::kStarting;
  int restarts = 0;
  int64_t created_at = 0;
  int64_t state_since = 0;    // unix seconds of the last state change
  int64_t next_start_at = 0;  // failed replicas: when to start again (unix ms)
  bool ever_ready = false;    // it has been ready since it was last started
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Inserts or replaces the API and appends its api_id to the version history.
  virtual absl::Status PutApi(const ApiRecord& api) = 0;
  virtual absl::StatusOr<std::optional<ApiRecord>> GetApi(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<ApiRecord>> ListApis() = 0;  // sorted by name
  // Deletes the API and its history. Its replica records stay until the control loop has
  // stopped their processes and deletes them one by one.
  virtual absl::Status DeleteApi(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<ApiVersion>> ListVersions(const std::string& name,
                                                               int limit) = 0;  // newest first

  virtual absl::Status PutReplica(const ReplicaRecord& replica) = 0;
  // Writes `replica` only if its stored state is still `expected` (compare-and-set); false when
  // another writer changed it first, or it is gone.
  virtual absl::StatusOr<bool> UpdateReplica(const ReplicaRecord& replica,
                                             ReplicaState expected) = 0;
  virtual absl::Status DeleteReplica(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<ReplicaRecord>> ListReplicas() = 0;
};

}  // namespace cortex::store
