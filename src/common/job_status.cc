#include "common/job_status.h"

#include <map>

namespace cortex {

std::string JobStatusText(const std::string& code) {
  static const std::map<std::string, std::string> kTexts = {
      {"status_unknown", "unknown"},
      {"status_enqueuing", "enqueuing"},
      {"status_running", "running"},
      {"status_enqueue_failed", "failed while enqueuing"},
      {"status_completed_with_failures", "completed with failures"},
      {"status_succeeded", "succeeded"},
      {"status_unexpected_error", "unexpected error"},
      {"status_worker_error", "worker error"},
      {"status_worker_oom", "out of memory"},
      {"status_stopped", "stopped"},
      {"status_timed_out", "timed out"}};
  auto it = kTexts.find(code);
  return it == kTexts.end() ? "unknown" : it->second;
}

}  // namespace cortex
