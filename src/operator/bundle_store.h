// Project bundles, content-addressed by the sha256 of their bytes, and the project directories
// extracted from them (once each). Thread-safe.
#pragma once

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <set>
#include <string>

namespace cortex::op {

class BundleStore {
 public:
  explicit BundleStore(std::string data_dir);  // bundles/ and projects/ live under it

  bool Has(const std::string& project_id) const;
  absl::Status Put(const std::string& project_id, const std::string& bytes);
  // The archive's bytes (NotFound when it was never uploaded, or has been pruned).
  absl::StatusOr<std::string> Get(const std::string& project_id) const;
  // The extracted project (extracting it on first use).
  absl::StatusOr<std::string> ProjectDir(const std::string& project_id);
  // Removes the bundles and extracted projects that are not in `keep` and were last written more
  // than `min_age_s` ago (an upload waits for its deploy that long). Returns how many projects.
  int Prune(const std::set<std::string>& keep, int64_t min_age_s);

 private:
  std::string BundlePath(const std::string& project_id) const;
  const std::string data_dir_;
  absl::Mutex extract_mu_;  // one extraction at a time
};

}  // namespace cortex::op
