// Keeps a replica's models in step with their sources: fetches every version into the model
// cache and writes the manifest its workers read (docs/worker-protocol.md, "Models"), first
// before the workers start, then every poll (live reloading, spec §5). A version that appears
// upstream is fetched and added; one that disappears is removed; a model whose source cannot be
// read keeps the versions it had, and the reason is logged.
//
// Sync() is called by one thread at a time (the caller's before Start, then the poller's).
#pragma once

#include <absl/base/thread_annotations.h>
#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "models/model_cache.h"
#include "models/model_sources.h"
#include "models/model_store.h"

namespace cortex::models {

struct SyncerOptions {
  ModelsConfig models;
  std::filesystem::path cache_root;
  std::filesystem::path manifest_path;
  std::function<void(const std::string&)> log = [](const std::string&) {};
};

class ModelSyncer {
 public:
  ModelSyncer(SyncerOptions options, const ModelStore& store);
  ~ModelSyncer();
  ModelSyncer(const ModelSyncer&) = delete;
  ModelSyncer& operator=(const ModelSyncer&) = delete;

  // One pass. The first one fails on any error (a replica must not start without its models);
  // later ones keep what a failing model had and log why.
  absl::Status Sync();
  // Calls Sync every `every` on a thread of its own, until Stop or destruction.
  void Start(std::chrono::milliseconds every);
  void Stop();

  int64_t generation() const { return generation_.load(); }
  // The manifest as last written.
  nlohmann::json Manifest() const;

 private:
  struct Entry {
    std::string path;
    int64_t timestamp = 0;
    bool operator==(const Entry& other) const {
      return path == other.path && timestamp == other.timestamp;
    }
  };
  using Versions = std::map<int64_t, Entry>;
  using Snapshot = std::map<std::string, Versions>;

  // The versions of `source` now, or the error that keeps the old ones.
  absl::StatusOr<Versions> SyncModel(const ModelSource& source, const Versions& before);
  void LogChanges(const Snapshot& before, const Snapshot& after) const;
  absl::Status WriteManifest(const Snapshot& snapshot, int64_t generation) const;

  SyncerOptions options_;
  const ModelStore& store_;
  ModelCache cache_;
  Snapshot snapshot_;
  bool synced_once_ = false;
  std::atomic<int64_t> generation_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

// The poll interval: $CORTEX_MODEL_POLL_S seconds (a decimal number), 10 s by default.
std::chrono::milliseconds ModelPollInterval();

}  // namespace cortex::models
