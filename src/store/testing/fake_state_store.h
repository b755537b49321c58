// An in-memory StateStore with the SQLite store's semantics (atomic calls, compare-and-set
// replica updates, version history newest first). For the control plane's unit tests.
#pragma once

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <map>

#include "store/state_store.h"

namespace cortex::store::testing {

class FakeStateStore : public StateStore {
 public:
  absl::Status PutApi(const ApiRecord& api) override {
    absl::MutexLock lock(&mu_);
    apis_[api.name] = api;
    auto& history = versions_[api.name];
    std::erase_if(history, [&](const ApiVersion& v) { return v.api_id == api.api_id; });
    history.push_back({api.api_id, api.last_updated});
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<ApiRecord>> GetApi(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto it = apis_.find(name);
    if (it == apis_.end()) return std::optional<ApiRecord>();
    return std::optional<ApiRecord>(it->second);
  }
  absl::StatusOr<std::vector<ApiRecord>> ListApis() override {
    absl::MutexLock lock(&mu_);
    std::vector<ApiRecord> out;
    for (const auto& [name, api] : apis_) out.push_back(api);
    return out;
  }
  absl::Status DeleteApi(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    apis_.erase(name);
    versions_.erase(name);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ApiVersion>> ListVersions(const std::string& name,
                                                       int limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<ApiVersion> out = versions_[name];
    std::stable_sort(out.begin(), out.end(), [](const ApiVersion& a, const ApiVersion& b) {
      return a.last_updated > b.last_updated;
    });
    if (static_cast<int>(out.size()) > limit) out.resize(limit);
    return out;
  }
  absl::Status PutReplica(const ReplicaRecord& replica) override {
    absl::MutexLock lock(&mu_);
    replicas_[replica.id] = replica;
    return absl::OkStatus();
  }
  absl::StatusOr<bool> UpdateReplica(const ReplicaRecord& replica, ReplicaState expected) override {
    absl::MutexLock lock(&mu_);
    auto it = replicas_.find(replica.id);
    if (it == replicas_.end() || it->second.state != expected) return false;
    it->second = replica;
    return true;
  }
  absl::Status DeleteReplica(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    replicas_.erase(id);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ReplicaRecord>> ListReplicas() override {
    absl::MutexLock lock(&mu_);
    std::vector<ReplicaRecord> out;
    for (const auto& [id, r] : replicas_) out.push_back(r);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, ApiRecord> apis_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<ApiVersion>> versions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ReplicaRecord> replicas_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cortex::store::testing
