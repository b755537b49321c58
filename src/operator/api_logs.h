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
  // Logs past `max_file_bytes` are rotated by RotateLarge (0: never).
  explicit ApiLogs(std::string data_dir, uint64_t max_file_bytes = 0);

  std::string ApiLogPath(const std::string& api) const;
  std::string JobLogPath(const std::string& api, const std::string& job_id) const;
  // "[operator] <line>" at the end of the API's (or the job's) log.
  void Append(const std::string& api, const std::string& line) const;
  void AppendJob(const std::string& api, const std::string& job_id, const std::string& line) const;
  // Whole lines a replica or worker wrote (on Kubernetes, read from its pod), as they are: to
  // the API's log, or the job's when `job_id` is set.
  void AppendOutput(const std::string& api, const std::string& job_id,
                    const std::string& text) const;
  void Remove(const std::string& api) const;
  // Every log under logs/ larger than the limit is copied to "<name>.log.1" (replacing the older
  // one) and truncated; writers append, so they go on at the new end and a follower starts over
  // (ReadChunk). Returns how many were rotated.
  int RotateLarge() const;

  // Bytes of `path` from `offset` (negative: that many from the end; past the end: from 0, the
  // file was truncated), at most `max_bytes`, and the offset to ask for next.
  static absl::StatusOr<std::pair<std::string, int64_t>> ReadChunk(const std::string& path,
                                                                   int64_t offset,
                                                                   int64_t max_bytes);

 private:
  const std::string data_dir_;
  const uint64_t max_file_bytes_;
};

}  // namespace cortex::op
