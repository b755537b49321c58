// `cortex cluster info --debug`: the local cluster's logs and state in one archive, for a bug
// report. Thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace cortex::cli {

struct DebugContents {
  nlohmann::json cluster_info;  // what `cluster info -o json` prints
  nlohmann::json apis;          // the operator's GET /v1/apis, or null when it did not answer
  std::string apis_error;       // why not, when apis is null
};

// Writes `<out_dir>/cortex-debug-<UTC time>.tar` with cluster-info.json, apis.json (or
// apis-error.txt), the cluster directory's cluster.json, supervisor.json and cluster-config.json,
// and every file under its logs/. The token, the state database, project bundles and sockets
// are left out. Returns the archive's path.
absl::StatusOr<std::filesystem::path> WriteDebugBundle(const std::filesystem::path& cluster_dir,
                                                       const DebugContents& contents,
                                                       const std::filesystem::path& out_dir);

}  // namespace cortex::cli
