#include "operator/bundle_store.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "bundle/bundle.h"
#include "common/status.h"
#include "common/util.h"

namespace cortex::op {

namespace fs = std::filesystem;

namespace {

bool IsHexId(const std::string& id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(c);
         });
}

}  // namespace

BundleStore::BundleStore(std::string data_dir) : data_dir_(std::move(data_dir)) {
  fs::create_directories(fs::path(data_dir_) / "bundles");
  fs::create_directories(fs::path(data_dir_) / "projects");
}

std::string BundleStore::BundlePath(const std::string& project_id) const {
  return absl::StrCat(data_dir_, "/bundles/", project_id, ".tar");
}

bool BundleStore::Has(const std::string& project_id) const {
  if (!IsHexId(project_id) || !fs::exists(BundlePath(project_id))) return false;
  // A bundle asked for is about to be deployed: young again, so Prune leaves it.
  std::error_code ignored;
  fs::last_write_time(BundlePath(project_id), fs::file_time_type::clock::now(), ignored);
  return true;
}

absl::Status BundleStore::Put(const std::string& project_id, const std::string& bytes) {
  if (!IsHexId(project_id))
    return absl::InvalidArgumentError("project id must be a sha256 hex digest");
  if (Sha256Hex(bytes) != project_id) {
    return absl::InvalidArgumentError("project bundle does not match its id (upload corrupted?)");
  }
  return WriteFileAtomic(BundlePath(project_id), bytes);
}

absl::StatusOr<std::string> BundleStore::Get(const std::string& project_id) const {
  if (!Has(project_id)) {
    return absl::NotFoundError(
        absl::StrCat("project ", project_id.substr(0, 12), " has not been uploaded"));
  }
  return ReadFile(BundlePath(project_id));
}

absl::StatusOr<std::string> BundleStore::ProjectDir(const std::string& project_id) {
  fs::path dir = fs::path(data_dir_) / "projects" / project_id;
  absl::MutexLock lock(&extract_mu_);
  if (IsHexId(project_id) && fs::exists(dir)) return dir.string();
  if (!Has(project_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("project ", project_id.substr(0, 12), " has not been uploaded"));
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(BundlePath(project_id)));
  RETURN_IF_ERROR(bundle::ExtractBundle(bytes, dir));
  return dir.string();
}

int BundleStore::Prune(const std::set<std::string>& keep, int64_t min_age_s) {
  absl::MutexLock lock(&extract_mu_);
  auto now = fs::file_time_type::clock::now();
  auto old = [&](const fs::path& path) {
    std::error_code ec;
    auto written = fs::last_write_time(path, ec);
    return !ec && now - written > std::chrono::seconds(min_age_s);
  };
  std::set<std::string> unused;
  std::error_code ec;
  for (const char* dir : {"bundles", "projects"}) {
    for (const auto& entry : fs::directory_iterator(fs::path(data_dir_) / dir, ec)) {
      std::string id = entry.path().stem().string();
      if (IsHexId(id) && keep.count(id) == 0 && old(entry.path())) unused.insert(id);
    }
  }
  int removed = 0;
  for (const auto& id : unused) {
    fs::path bundle = BundlePath(id);
    if (fs::exists(bundle, ec) && !old(bundle)) continue;  // uploaded again meanwhile
    fs::remove(bundle, ec);
    removed += fs::remove_all(fs::path(data_dir_) / "projects" / id, ec) > 0;
  }
  return removed;
}

}  // namespace cortex::op
