// Project bundles, content-addressed by the sha256 of their bytes, and the project directories
// extracted from them (once each). Thread-safe.
#pragma once

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <string>

namespace cortex::op {

class BundleStore {
 public:
  explicit BundleStore(std::string data_dir);  // bundles/ and projects/ live under it

  bool Has(const std::string& project_id) const;
  absl::Status Put(const std::string& project_id, const std::string& bytes);
  // The extracted project (extracting it on first use).
  absl::StatusOr<std::string> ProjectDir(const std::string& project_id);

 private:
  std::string BundlePath(const std::string& project_id) const;
  const std::string data_dir_;
  absl::Mutex extract_mu_;  // one extraction at a time
};

}  // namespace cortex::op
