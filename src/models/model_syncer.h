// Keeps a replica's models in step with their sources: fetches every version into the model
// cache and writes the manifest its workers read (docs/models.md, "Where models live"), first
// before the workers start, then every poll (live reloading, spec §5). A version that appears
// upstream is fetched and added; one that disappears is removed; a model whose source cannot be
// read keeps the versions it had, and the reason is logged.
//
// With caching (models.cache_size), the manifest lists every version but fetches none up
// front: the worker writes the versions it wants, most recently used first, to the wants file
// ({"seq": n, "wants": [[name, version], ...]}); the syncer keeps the first disk_cache_size of
// them on disk, deleting the others *before* it fetches, so the replica's private cache never
// holds more, and answers with "wants_seq": n in the manifest (a failed fetch as the version's
// "error").
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
  std::filesystem::path wants_path;  // caching only; default: manifest_path + ".wants"
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
  // Caching: serves the wants file if its seq is newer than the last one served.
  absl::Status ServeWants();
  // Calls Sync every `every` (and, with caching, ServeWants as soon as the wants change) on a
  // thread of its own, until Stop or destruction.
  void Start(std::chrono::milliseconds every);
  void Stop();

  int64_t generation() const { return generation_.load(); }

 private:
  struct Entry {
    std::string path;  // empty: not on disk (caching)
    int64_t timestamp = 0;
    std::string error;  // caching: why the last fetch failed
    bool operator==(const Entry& other) const {
      return path == other.path && timestamp == other.timestamp && error == other.error;
    }
  };
  using Versions = std::map<int64_t, Entry>;
  using Snapshot = std::map<std::string, Versions>;

  // The versions of `source` now, or the error that keeps the old ones.
  absl::StatusOr<Versions> SyncModel(const ModelSource& source, const Versions& before);
  bool caching() const { return options_.models.cache_size > 0; }
  // Caching: deletes the versions on disk that `snapshot` does not name.
  void RemoveUnlisted(const Snapshot& snapshot);
  void LogChanges(const Snapshot& before, const Snapshot& after) const;
  // Writes `snapshot` as the next generation's manifest and makes it current.
  absl::Status Publish(Snapshot snapshot);
  absl::Status WriteManifest(const Snapshot& snapshot, int64_t generation) const;

  SyncerOptions options_;
  const ModelStore& store_;
  ModelCache cache_;
  Snapshot snapshot_;
  std::map<std::string, ModelTree> trees_;  // as last read, by model name
  bool synced_once_ = false;
  int64_t wants_seq_ = 0;  // caching: the last wants served
  std::atomic<int64_t> generation_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

// The poll interval: $CORTEX_MODEL_POLL_S seconds (a decimal number), 10 s by default.
std::chrono::milliseconds ModelPollInterval();

}  // namespace cortex::models
