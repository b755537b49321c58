// A batch job submission (spec §11) turned into batches before anything is stored: validation
// with Cortex's wording, the item list or the files a lister names (local paths, or s3:// with
// the SigV4 client), JSON-lines reading, chunking within the 256 KiB message limit. Pure but for
// the file and S3 reads; thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "s3/s3_client.h"

namespace cortex::op {

struct JobPlan {
  std::vector<std::string> batches;  // JSON arrays
  std::vector<std::string> listed;   // file_path_lister / delimited_files: the matched files
};

// What a submission may ask for (the cluster's limits, config::ClusterConfig).
struct PlanLimits {
  // Local paths (absolute or file://) must lie inside one of these once symbolic links are
  // resolved; none: local paths are refused.
  std::vector<std::filesystem::path> allowed_local_paths;
  int64_t max_batches = 100'000;
  int max_workers = 16;
  int json_depth = 128;  // of each line of a delimited file
};

// Validates a submission body and splits it into batches. Local paths are read from this
// machine, a line at a time. Errors are the user's, with Cortex's wording.
absl::StatusOr<JobPlan> PlanJob(const nlohmann::json& submission, const PlanLimits& limits = {});

// The S3 client jobs use: credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (/AWS_SESSION_TOKEN), AWS_REGION, and CORTEX_S3_ENDPOINT for S3-compatible stores.
s3::Client S3FromEnvironment();

}  // namespace cortex::op
