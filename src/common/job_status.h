// The batch job status codes (spec §11) and their CLI texts, shared by the operator and the CLI.
#pragma once

#include <string>

namespace cortex {

// "running", "succeeded", "completed with failures", ... for a "status_..." code.
std::string JobStatusText(const std::string& code);

// False while the job is enqueuing or running.
inline bool JobEnded(const std::string& code) {
  return code != "status_running" && code != "status_enqueuing";
}

}  // namespace cortex
