#include "operator/bundle_store.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
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
  return IsHexId(project_id) && fs::exists(BundlePath(project_id));
}

absl::Status BundleStore::Put(const std::string& project_id, const std::string& bytes) {
  if (!IsHexId(project_id))
    return absl::InvalidArgumentError("project id must be a sha256 hex digest");
  if (Sha256Hex(bytes) != project_id) {
    return absl::InvalidArgumentError("project bundle does not match its id (upload corrupted?)");
  }
  return WriteFileAtomic(BundlePath(project_id), bytes);
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

}  // namespace cortex::op
