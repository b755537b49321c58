// Fuzzes batch job submissions: the bytes are parsed as the operator parses a submission body
// (ParseNetworkJson, depth-checked), then planned with op::PlanJob.
//
// PlanJob reads the files a file_path_lister or delimited_files names, and lists and reads
// s3:// paths over the network. The fuzzer never lets it leave a private directory: every local
// path (absolute or file://) and every well-formed s3:// path is rewritten to the same path
// under a small data directory made at start-up; malformed paths are left as they are, since
// PlanJob refuses them before any I/O.
//
// Checked beyond "no crash": every batch of a plan is a non-empty JSON array within the message
// limit.

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "common/network_json.h"
#include "operator/job_planner.h"
#include "s3/s3_client.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxBatchBytes = 256 * 1024;

void WriteFile(const fs::path& path, std::string_view content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// The files PlanJob may see: a few JSON-lines files, one invalid, one too deep, one empty.
const fs::path& DataDir() {
  static const fs::path* dir = [] {
    std::string pattern = (fs::temp_directory_path() / "cortex-job-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* path = new fs::path(pattern);
    WriteFile(*path / "data/a.jsonl", "{\"x\": 1}\n[1, 2]\n\n\"text\"\n");
    WriteFile(*path / "data/b.json", "3.5\r\n{\"y\": {\"z\": null}}\n");
    WriteFile(*path / "data/sub/c.jsonl", "true\n");
    WriteFile(*path / "data/empty.jsonl", "");
    WriteFile(*path / "bad/invalid.jsonl", "{\"x\": \n");
    WriteFile(*path / "bad/deep.jsonl", std::string(200, '[') + std::string(200, ']') + "\n");
    std::atexit([] { fs::remove_all(DataDir()); });
    return path;
  }();
  return *dir;
}

// `path` (local or s3://) as a path inside the data directory; unchanged when PlanJob would
// refuse it without I/O.
std::string Confine(const std::string& path) {
  std::string local;
  bool scheme = false;
  if (path.starts_with("s3://")) {
    absl::StatusOr<cortex::s3::S3Path> s3 = cortex::s3::ParseS3Path(path);
    if (!s3.ok()) return path;
    local = "/" + s3->key;
  } else {
    scheme = path.starts_with("file://");
    local = scheme ? path.substr(7) : path;
    if (local.empty() || local[0] != '/') return path;
  }
  // Lexically normal, a rooted path has no ".." left: it stays inside the data directory.
  fs::path relative = fs::path(local).lexically_normal().relative_path();
  std::string confined = (DataDir() / relative).string();
  return scheme ? "file://" + confined : confined;
}

void ConfinePaths(json& submission) {
  for (const char* key : {"file_path_lister", "delimited_files"}) {
    auto lister = submission.find(key);
    if (lister == submission.end() || !lister->is_object()) continue;
    auto paths = lister->find("s3_paths");
    if (paths == lister->end() || !paths->is_array()) continue;
    for (json& path : *paths) {
      if (path.is_string()) path = Confine(path.get<std::string>());
    }
  }
}

void CheckPlan(const cortex::op::JobPlan& plan, size_t max_batches) {
  if (plan.batches.size() > max_batches) {
    std::cerr << plan.batches.size() << " batches, over the limit of " << max_batches << "\n";
    std::abort();
  }
  // Confinement: every local file listed lies inside the allowed directory.
  static const fs::path root = fs::weakly_canonical(DataDir());
  for (const std::string& listed : plan.listed) {
    if (listed.starts_with("s3://")) continue;
    fs::path local =
        fs::weakly_canonical(listed.starts_with("file://") ? listed.substr(7) : listed);
    fs::path rel = local.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") {
      std::cerr << "listed outside the allowed directory: " << listed << "\n";
      std::abort();
    }
  }
  for (const std::string& batch : plan.batches) {
    json parsed = json::parse(batch, nullptr, false);
    if (!parsed.is_array() || parsed.empty() || batch.size() > kMaxBatchBytes) {
      std::cerr << "bad batch of " << batch.size() << " bytes: " << batch.substr(0, 200) << "\n";
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)DataDir();
  // Whatever happens, no request may reach a real S3 endpoint.
  ::setenv("CORTEX_S3_ENDPOINT", "http://127.0.0.1:1", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<json> submission = cortex::ParseNetworkJson(text, "the job submission");
  if (!submission.ok()) return 0;
  if (submission->is_object()) ConfinePaths(*submission);
  // The cluster lets jobs read the data directory only (its "bad/" part included).
  static const cortex::op::PlanLimits limits = [] {
    cortex::op::PlanLimits l;
    l.allowed_local_paths = {DataDir()};
    l.max_batches = 1000;
    return l;
  }();
  absl::StatusOr<cortex::op::JobPlan> plan = cortex::op::PlanJob(*submission, limits);
  if (plan.ok()) CheckPlan(*plan, limits.max_batches);
  return 0;
}
