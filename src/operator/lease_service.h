// The worker protocol (POST /v1/jobs/<job>/<action>, python/cortex_runtime/batch.py): workers
// lease a batch, renew the lease while predict runs, ack or fail it, and one of them is given
// on_job_complete when every batch is done. Thread-safe (the queue is transactional).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "operator/api_logs.h"
#include "store/job_queue.h"

namespace cortex::op {

class LeaseService {
 public:
  LeaseService(store::JobQueue& queue, const ApiLogs& logs, const Clock& clock, int64_t lease_ms);

  // `action`: lease | renew | ack | fail | complete; `body` carries the worker's id and fields.
  absl::StatusOr<nlohmann::json> Call(const std::string& job_id, const std::string& action,
                                      const nlohmann::json& body);

 private:
  store::JobQueue& queue_;
  const ApiLogs& logs_;
  const Clock& clock_;
  const int64_t lease_ms_;
};

}  // namespace cortex::op
