// An in-memory ModelStore for tests: files by full path ("s3://b/m/1/model.onnx" or
// "/models/m/1/model.onnx"), each with its content, time and ETag. Thread-safe.
#pragma once

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>

#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "models/model_store.h"

namespace cortex::models {

class FakeModelStore : public ModelStore {
 public:
  void Put(const std::string& path, const std::string& content, int64_t modified_s = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = {content, modified_s, absl::StrCat(++etags_)};
  }
  void Remove(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(path);
  }
  void RemoveDir(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = files_.begin(); it != files_.end();) {
      it = absl::StartsWith(it->first, dir + "/") ? files_.erase(it) : std::next(it);
    }
  }
  // Makes every call fail with `status` (OkStatus: back to normal).
  void FailWith(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = std::move(status);
  }
  // Called (without the store's lock) before each fetch.
  void OnFetch(std::function<void()> hook) { on_fetch_ = std::move(hook); }
  int fetches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fetches_;
  }

  absl::StatusOr<std::vector<ModelFile>> List(const std::string& dir) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) return failure_;
    if (files_.count(dir)) {
      return absl::FailedPreconditionError(absl::StrCat(dir, ": model path must be a directory"));
    }
    std::vector<ModelFile> out;
    for (const auto& [path, file] : files_) {
      if (!absl::StartsWith(path, dir + "/")) continue;
      out.push_back({path.substr(dir.size() + 1), file.content.size(), file.modified_s, file.etag});
    }
    if (out.empty()) {
      return absl::NotFoundError(absl::StrCat(dir, ": dir not found or insufficient permissions"));
    }
    return out;
  }

  absl::Status Fetch(const std::string& dir, const std::string& path,
                     const std::filesystem::path& dest) const override {
    if (on_fetch_) on_fetch_();
    std::lock_guard<std::mutex> lock(mu_);
    ++fetches_;
    if (!failure_.ok()) return failure_;
    auto it = files_.find(absl::StrCat(dir, "/", path));
    if (it == files_.end()) return absl::NotFoundError(absl::StrCat(dir, "/", path));
    std::ofstream(dest, std::ios::binary) << it->second.content;
    return absl::OkStatus();
  }

 private:
  struct File {
    std::string content;
    int64_t modified_s = 0;
    std::string etag;
  };
  std::function<void()> on_fetch_;  // set before use
  // A std::mutex, not absl::Mutex: ThreadSanitizer sees the pthread calls behind it, not the
  // atomics inside Debian's (uninstrumented) Abseil, and the tests share this fake between the
  // syncer's poller and the test's thread. Every field below is guarded by it.
  mutable std::mutex mu_;
  std::map<std::string, File> files_;
  absl::Status failure_;
  int etags_ = 0;
  mutable int fetches_ = 0;
};

}  // namespace cortex::models
