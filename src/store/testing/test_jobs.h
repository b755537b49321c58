// A job for queue tests: `batches` batches with the payloads "[0]", "[1]", ...
#pragma once

#include <string>
#include <vector>

#include "store/job_queue.h"

namespace cortex::store::testing {

inline absl::Status CreateTestJob(JobQueue& queue, const std::string& id, int batches,
                                  int max_attempts = 2) {
  JobRecord job;
  job.id = id;
  job.api_name = "api";
  job.spec_json = "{}";
  job.total_batches = batches;
  job.max_attempts = max_attempts;
  std::vector<std::string> payloads;
  for (int i = 0; i < batches; ++i) payloads.push_back("[" + std::to_string(i) + "]");
  return queue.CreateJob(job, payloads);
}

}  // namespace cortex::store::testing
