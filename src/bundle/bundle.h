// Project bundles: the project directory packed into a deterministic archive, and unpacked on
// the operator's side. Thread-compatible pure functions (plus file I/O).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bundle/ignore_rules.h"

namespace cortex::bundle {

struct BundleLimits {
  uint64_t max_file_bytes = 512ull * 1024 * 1024;     // hard limit per file
  uint64_t max_project_bytes = 512ull * 1024 * 1024;  // hard limit for the whole project
};

struct BundleFile {
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
};

// Lists the project files under `root` (spec §1): everything, minus the config file
// (`config_file` relative to root, may be empty), dot-files and dot-folders, __pycache__,
// *.pyc/*.pyo/*.pyd, names starting with "cortex-debug-", and paths matched by
// `<root>/.cortexignore` (gitignore syntax); `.env` is added back. Sorted by path.
absl::StatusOr<std::vector<BundleFile>> ListProjectFiles(const std::filesystem::path& root,
                                                         const std::string& config_file);

// Packs the listed files into a deterministic tar archive (sorted, mtime 0, uid/gid 0, mode
// 0644/0755 from the executable bit): the same files give the same bytes, so the content hash
// identifies the project. Errors name the file and the limit.
absl::StatusOr<std::string> CreateBundle(const std::filesystem::path& root,
                                         const std::vector<BundleFile>& files,
                                         const BundleLimits& limits = {});

// Unpacks `archive` into `destination` (created; must not exist or be empty). Refuses absolute
// paths, "..", links pointing outside, and more than the limits.
absl::Status ExtractBundle(const std::string& archive, const std::filesystem::path& destination,
                           const BundleLimits& limits = {});

}  // namespace cortex::bundle
