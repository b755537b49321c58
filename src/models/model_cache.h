// The models on this machine: a cache under the cluster directory with one directory per model
// version, named by the digest of what identifies the version upstream (its directory, and each
// file's path, size and ETag or modification time), so a changed upload gets a new directory and
// an unchanged one is never fetched twice, whichever replica asks. A version is fetched into a
// temporary directory and renamed into place: a reader never sees half a model.
//
// Thread-compatible; several processes may share one cache (the rename decides who wins).
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <set>
#include <string>

#include "models/model_layout.h"
#include "models/model_store.h"

namespace cortex::models {

class ModelCache {
 public:
  ModelCache(std::filesystem::path root, const ModelStore& store);

  // The cache directory of `version` of `tree`.
  std::filesystem::path PathOf(const ModelTree& tree, const ModelVersion& version) const;
  bool Has(const ModelTree& tree, const ModelVersion& version) const;
  // PathOf, fetching the version first when the cache lacks it.
  absl::StatusOr<std::filesystem::path> Fetch(const ModelTree& tree, const ModelVersion& version);
  // Removes what a fetch that died part way left behind (temporary directories older than
  // `older_than_s`).
  void RemoveAbandoned(int64_t older_than_s);
  // Removes the versions no manifest names (`keep`: directory names) that were last fetched or
  // reused more than `min_age_s` ago; returns how many. Replicas' own caches (caching) are left.
  static int Prune(const std::filesystem::path& root, const std::set<std::string>& keep,
                   int64_t min_age_s);

 private:
  std::filesystem::path root_;
  const ModelStore& store_;
};

}  // namespace cortex::models
