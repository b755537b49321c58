#include "models/model_store.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <algorithm>
#include <fstream>
#include <system_error>

namespace cortex::models {
namespace {

namespace fs = std::filesystem;

// Hidden files and folders are left out, as Cortex did; so are paths a copy could not keep
// under its directory (empty parts: an S3 key "m//etc/x" would be "/etc/x" here).
bool Skipped(const std::string& relative) {
  if (relative.empty()) return true;
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (part.empty() || absl::StartsWith(part, ".")) return true;
  }
  return false;
}

void SortByPath(std::vector<ModelFile>& files) {
  std::sort(files.begin(), files.end(),
            [](const ModelFile& a, const ModelFile& b) { return a.path < b.path; });
}

class LocalStore : public ModelStore {
 public:
  absl::StatusOr<std::vector<ModelFile>> List(const std::string& dir) const override {
    std::error_code ec;
    fs::file_status status = fs::status(dir, ec);
    if (ec || !fs::exists(status)) {
      return absl::NotFoundError(absl::StrCat(dir, ": dir not found or insufficient permissions"));
    }
    if (!fs::is_directory(status)) {
      return absl::FailedPreconditionError(absl::StrCat(dir, ": model path must be a directory"));
    }
    std::vector<ModelFile> files;
    fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      // Lexically: a symbolic link keeps its own name (fs::relative would resolve it).
      std::string relative = it->path().lexically_relative(dir).generic_string();
      if (Skipped(relative)) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file()) continue;
      ModelFile file;
      file.path = relative;
      file.size = it->file_size(ec);
      if (ec) break;
      auto mtime = it->last_write_time(ec);
      if (ec) break;
      auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                       .count();
      file.modified_s = nanos / 1'000'000'000;
      file.etag = std::to_string(nanos);
      files.push_back(std::move(file));
    }
    if (ec) {
      std::string where = it == fs::recursive_directory_iterator() ? dir : it->path().string();
      return absl::UnavailableError(absl::StrCat(where, ": cannot be read: ", ec.message()));
    }
    SortByPath(files);
    return files;
  }

  absl::Status Fetch(const std::string& dir, const std::string& path,
                     const fs::path& dest) const override {
    std::error_code ec;
    fs::copy_file(fs::path(dir) / path, dest, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat(dir, "/", path, ": cannot be copied: ", ec.message()));
    }
    return absl::OkStatus();
  }
};

class S3Store : public ModelStore {
 public:
  explicit S3Store(s3::Client client) : client_(std::move(client)) {}

  absl::StatusOr<std::vector<ModelFile>> List(const std::string& dir) const override {
    absl::StatusOr<s3::S3Path> location = s3::ParseS3Path(dir);
    if (!location.ok()) return location.status();
    std::string prefix = location->key;
    if (!prefix.empty() && !absl::EndsWith(prefix, "/")) prefix += "/";
    absl::StatusOr<std::vector<s3::ObjectInfo>> objects = client_.List(location->bucket, prefix);
    if (!objects.ok()) {
      // Cortex's one message for both; the code tells a missing bucket (the model is gone) from
      // refused credentials (the model may well be there: a replica keeps what it has).
      if (absl::IsNotFound(objects.status()) || absl::IsPermissionDenied(objects.status())) {
        return absl::Status(objects.status().code(),
                            absl::StrCat(dir, ": dir not found or insufficient permissions"));
      }
      return objects.status();
    }
    std::vector<ModelFile> files;
    for (const s3::ObjectInfo& object : *objects) {
      std::string relative = object.key.substr(prefix.size());
      // "folder/" placeholder objects that consoles create are not files.
      if (relative.empty() || absl::EndsWith(relative, "/") || Skipped(relative)) continue;
      files.push_back({relative, object.size, object.last_modified_s, object.etag});
    }
    if (files.empty() && !location->key.empty() && !absl::EndsWith(location->key, "/")) {
      // "s3://bucket/model.bin" names an object, not a directory.
      absl::StatusOr<std::vector<s3::ObjectInfo>> exact =
          client_.List(location->bucket, location->key);
      if (exact.ok() && std::any_of(exact->begin(), exact->end(), [&](const s3::ObjectInfo& o) {
            return o.key == location->key;
          })) {
        return absl::FailedPreconditionError(absl::StrCat(dir, ": model path must be a directory"));
      }
    }
    if (files.empty()) {  // S3 has no directories: nothing under the prefix is no directory
      return absl::NotFoundError(absl::StrCat(dir, ": dir not found or insufficient permissions"));
    }
    SortByPath(files);
    return files;
  }

  absl::Status Fetch(const std::string& dir, const std::string& path,
                     const fs::path& dest) const override {
    absl::StatusOr<s3::S3Path> location = s3::ParseS3Path(dir);
    if (!location.ok()) return location.status();
    std::string key = location->key;
    if (!key.empty() && !absl::EndsWith(key, "/")) key += "/";
    key += path;
    std::ofstream out(dest, std::ios::binary | std::ios::trunc);
    if (!out) return absl::UnavailableError(absl::StrCat(dest.string(), ": cannot be written"));
    absl::Status fetched =
        client_.GetStreaming(location->bucket, key, [&](const char* data, size_t size) {
          out.write(data, static_cast<std::streamsize>(size));
          return static_cast<bool>(out);
        });
    out.close();
    if (!fetched.ok()) return fetched;
    if (!out) return absl::UnavailableError(absl::StrCat(dest.string(), ": cannot be written"));
    return absl::OkStatus();
  }

 private:
  s3::Client client_;
};

class RoutingStore : public ModelStore {
 public:
  RoutingStore(std::unique_ptr<ModelStore> local, std::unique_ptr<ModelStore> s3)
      : local_(std::move(local)), s3_(std::move(s3)) {}
  absl::StatusOr<std::vector<ModelFile>> List(const std::string& dir) const override {
    return For(dir).List(dir);
  }
  absl::Status Fetch(const std::string& dir, const std::string& path,
                     const fs::path& dest) const override {
    return For(dir).Fetch(dir, path, dest);
  }

 private:
  const ModelStore& For(const std::string& dir) const { return IsS3Path(dir) ? *s3_ : *local_; }
  std::unique_ptr<ModelStore> local_;
  std::unique_ptr<ModelStore> s3_;
};

}  // namespace

bool IsS3Path(const std::string& path) { return absl::StartsWith(path, "s3://"); }

std::unique_ptr<ModelStore> LocalModelStore() { return std::make_unique<LocalStore>(); }

std::unique_ptr<ModelStore> S3ModelStore(s3::Client client) {
  return std::make_unique<S3Store>(std::move(client));
}

std::unique_ptr<ModelStore> RoutingModelStore(std::unique_ptr<ModelStore> local,
                                              std::unique_ptr<ModelStore> s3) {
  return std::make_unique<RoutingStore>(std::move(local), std::move(s3));
}

std::unique_ptr<ModelStore> DefaultModelStore() {
  return RoutingModelStore(LocalModelStore(),
                           S3ModelStore(s3::Client(s3::ClientOptionsFromEnvironment())));
}

}  // namespace cortex::models
