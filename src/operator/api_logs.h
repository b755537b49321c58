// The operator's log files: one per API (its replicas' output and the operator's notes) and one
// per batch job, under <data>/logs/. Appends are whole lines (O_APPEND); thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>
#include <utility>

namespace cortex::op {

class ApiLogs {
 public:
  explicit ApiLogs(std::string data_dir);

  std::string ApiLogPath(const std::string& api) const;
  std::string JobLogPath(const std::string& api, const std::string& job_id) const;
  // "[operator] <line>" at the end of the API's (or the job's) log.
  void Append(const std::string& api, const std::string& line) const;
  void AppendJob(const std::string& api, const std::string& job_id, const std::string& line) const;
  void Remove(const std::string& api) const;

  // Bytes of `path` from `offset` (negative: that many from the end; past the end: from 0, the
  // file was truncated), at most `max_bytes`, and the offset to ask for next.
  static absl::StatusOr<std::pair<std::string, int64_t>> ReadChunk(const std::string& path,
                                                                   int64_t offset,
                                                                   int64_t max_bytes);

 private:
  const std::string data_dir_;
};

}  // namespace cortex::op
