// A batch job submission (spec §11) turned into batches before anything is stored: validation
// with Cortex's wording, the item list or the files a lister names (local paths, or s3:// with
// the SigV4 client), JSON-lines reading, chunking within the 256 KiB message limit. Pure but for
// the file and S3 reads; thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "s3/s3_client.h"

namespace cortex::op {

struct JobPlan {
  std::vector<std::string> batches;  // JSON arrays
  std::vector<std::string> listed;   // file_path_lister / delimited_files: the matched files
};

// Validates a submission body and splits it into batches. Local paths (absolute or file://) are
// read from this machine. Errors are the user's, with Cortex's wording.
absl::StatusOr<JobPlan> PlanJob(const nlohmann::json& submission);

// The S3 client jobs use: credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
// (/AWS_SESSION_TOKEN), AWS_REGION, and CORTEX_S3_ENDPOINT for S3-compatible stores.
s3::Client S3FromEnvironment();

}  // namespace cortex::op
