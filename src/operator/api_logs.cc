#include "operator/api_logs.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace cortex::op {

namespace fs = std::filesystem;

ApiLogs::ApiLogs(std::string data_dir, uint64_t max_file_bytes)
    : data_dir_(std::move(data_dir)), max_file_bytes_(max_file_bytes) {
  fs::create_directories(fs::path(data_dir_) / "logs" / "apis");
  fs::create_directories(fs::path(data_dir_) / "logs" / "jobs");
}

std::string ApiLogs::ApiLogPath(const std::string& api) const {
  return absl::StrCat(data_dir_, "/logs/apis/", api, ".log");
}

std::string ApiLogs::JobLogPath(const std::string& api, const std::string& job_id) const {
  return absl::StrCat(data_dir_, "/logs/jobs/", api, "/", job_id, ".log");
}

void ApiLogs::Append(const std::string& api, const std::string& line) const {
  std::ofstream out(ApiLogPath(api), std::ios::app);
  out << "[operator] " + line + "\n" << std::flush;
}

void ApiLogs::AppendJob(const std::string& api, const std::string& job_id,
                        const std::string& line) const {
  std::string path = JobLogPath(api, job_id);
  std::error_code ignored;
  fs::create_directories(fs::path(path).parent_path(), ignored);
  std::ofstream out(path, std::ios::app);
  out << "[operator] " + line + "\n" << std::flush;
}

void ApiLogs::AppendOutput(const std::string& api, const std::string& job_id,
                           const std::string& text) const {
  std::string path = job_id.empty() ? ApiLogPath(api) : JobLogPath(api, job_id);
  std::error_code ignored;
  fs::create_directories(fs::path(path).parent_path(), ignored);
  std::ofstream out(path, std::ios::app);
  out << text << std::flush;
}

void ApiLogs::Remove(const std::string& api) const {
  std::error_code ignored;
  fs::remove(ApiLogPath(api), ignored);
}

int ApiLogs::RotateLarge() const {
  if (max_file_bytes_ == 0) return 0;
  int rotated = 0;
  std::error_code ec;
  fs::path root = fs::path(data_dir_) / "logs";
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec) || it->path().extension() != ".log") continue;
    if (it->file_size(file_ec) <= max_file_bytes_ || file_ec) continue;
    fs::path older = it->path();
    older += ".1";
    fs::copy_file(it->path(), older, fs::copy_options::overwrite_existing, file_ec);
    if (!file_ec) fs::resize_file(it->path(), 0, file_ec);
    if (!file_ec) ++rotated;
  }
  return rotated;
}

absl::StatusOr<std::pair<std::string, int64_t>> ApiLogs::ReadChunk(const std::string& path,
                                                                   int64_t offset,
                                                                   int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::make_pair(std::string(), int64_t{0});
  in.seekg(0, std::ios::end);
  int64_t size = in.tellg();
  if (offset < 0) offset = std::max<int64_t>(0, size + offset);
  if (offset > size) offset = 0;
  int64_t n = std::min(max_bytes, size - offset);
  std::string data(static_cast<size_t>(n), '\0');
  in.seekg(offset);
  in.read(data.data(), n);
  return std::make_pair(std::move(data), offset + n);
}

}  // namespace cortex::op
