// Where model files come from: a local directory or an S3 prefix (spec §5). A store lists every
// file under a directory and copies one file out; the model code above it never knows which
// kind of store it reads. FakeModelStore (testing/) stands in for tests.
//
// Thread-safe: the adapters keep no mutable state.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "s3/s3_client.h"

namespace cortex::models {

struct ModelFile {
  std::string path;  // relative to the listed directory, '/'-separated
  uint64_t size = 0;
  int64_t modified_s = 0;  // Unix seconds
  std::string etag;        // what changes when the content does (S3's ETag; a local mtime)
};

class ModelStore {
 public:
  virtual ~ModelStore() = default;
  // Every file under `dir`, recursively, sorted by path. Hidden files and folders (a part of the
  // path starting with '.') are left out, as Cortex did. Errors name `dir`: NotFound
  // ("<dir>: dir not found or insufficient permissions"; PermissionDenied with the same message
  // when the store refused the credentials), FailedPrecondition when `dir` is a file
  // ("<dir>: model path must be a directory"), Unavailable when the store cannot be read.
  virtual absl::StatusOr<std::vector<ModelFile>> List(const std::string& dir) const = 0;
  // Copies `dir`/`path` to the new file `dest`.
  virtual absl::Status Fetch(const std::string& dir, const std::string& path,
                             const std::filesystem::path& dest) const = 0;
};

// Local directories (absolute paths).
std::unique_ptr<ModelStore> LocalModelStore();
// `s3://bucket/prefix` paths through `client`.
std::unique_ptr<ModelStore> S3ModelStore(s3::Client client);
// `s3://` paths to `s3`, every other path to `local`.
std::unique_ptr<ModelStore> RoutingModelStore(std::unique_ptr<ModelStore> local,
                                              std::unique_ptr<ModelStore> s3);
// The routing store over the local disk and the S3 client configured as for batch jobs
// (AWS_* credentials, AWS_REGION, CORTEX_S3_ENDPOINT).
std::unique_ptr<ModelStore> DefaultModelStore();

bool IsS3Path(const std::string& path);

}  // namespace cortex::models
