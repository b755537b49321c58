#include "models/model_cache.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>

#include <chrono>
#include <system_error>

#include "common/util.h"

namespace cortex::models {
namespace {

namespace fs = std::filesystem;

constexpr char kTempPrefix[] = ".tmp-";

std::string VersionDir(const ModelTree& tree, const ModelVersion& version) {
  return version.dir.empty() ? tree.path : absl::StrCat(tree.path, "/", version.dir);
}

}  // namespace

ModelCache::ModelCache(fs::path root, const ModelStore& store)
    : root_(std::move(root)), store_(store) {}

fs::path ModelCache::PathOf(const ModelTree& tree, const ModelVersion& version) const {
  std::string identity = absl::StrCat("model-version/1\n", VersionDir(tree, version), "\n");
  for (const ModelFile& file : version.files) {
    absl::StrAppend(&identity, file.path, "\t", file.size, "\t", file.etag, "\n");
  }
  return root_ / Sha256Hex(identity).substr(0, 40);
}

bool ModelCache::Has(const ModelTree& tree, const ModelVersion& version) const {
  std::error_code ec;
  return fs::is_directory(PathOf(tree, version), ec);
}

absl::StatusOr<fs::path> ModelCache::Fetch(const ModelTree& tree, const ModelVersion& version) {
  fs::path final_path = PathOf(tree, version);
  std::error_code ec;
  if (fs::is_directory(final_path, ec)) {
    // Used again: young again, so Prune leaves it.
    fs::last_write_time(final_path, fs::file_time_type::clock::now(), ec);
    return final_path;
  }
  fs::create_directories(root_, ec);
  fs::path temp =
      root_ / absl::StrCat(kTempPrefix, final_path.filename().string(), "-", RandomId(8));
  auto fail = [&](absl::Status status) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    return status;
  };
  std::string from = VersionDir(tree, version);
  for (const ModelFile& file : version.files) {
    fs::path dest = (temp / file.path).lexically_normal();
    if (fs::path(file.path).is_absolute() ||
        !absl::StartsWith(dest.generic_string(), temp.generic_string() + "/")) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat(from, "/", file.path, ": is not a path inside the model")));
    }
    fs::create_directories(dest.parent_path(), ec);
    if (ec) {
      return fail(absl::UnavailableError(
          absl::StrCat(dest.parent_path().string(), ": cannot be created: ", ec.message())));
    }
    if (absl::Status fetched = store_.Fetch(from, file.path, dest); !fetched.ok()) {
      return fail(fetched);
    }
    if (fs::file_size(dest, ec) != file.size || ec) {
      return fail(absl::UnavailableError(
          absl::StrCat(from, "/", file.path, ": changed while it was being fetched (expected ",
                       file.size, " bytes); it will be fetched again at the next poll")));
    }
  }
  fs::rename(temp, final_path, ec);
  if (ec) {
    // Another replica renamed the same version into place first: theirs is as good as ours.
    if (fs::is_directory(final_path, ec)) {
      fs::remove_all(temp, ec);
      return final_path;
    }
    return fail(absl::UnavailableError(
        absl::StrCat(final_path.string(), ": cannot be created: ", ec.message())));
  }
  return final_path;
}

void ModelCache::RemoveAbandoned(int64_t older_than_s) {
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(root_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (!absl::StartsWith(it->path().filename().string(), kTempPrefix)) continue;
    std::error_code time_ec;
    auto age = now - it->last_write_time(time_ec);
    if (!time_ec && age > std::chrono::seconds(older_than_s)) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
}

int ModelCache::Prune(const fs::path& root, const std::set<std::string>& keep, int64_t min_age_s) {
  auto now = fs::file_time_type::clock::now();
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name == "replicas" || absl::StartsWith(name, kTempPrefix) || keep.count(name)) continue;
    std::error_code time_ec;
    auto written = fs::last_write_time(it->path(), time_ec);
    if (time_ec || now - written <= std::chrono::seconds(min_age_s)) continue;
    // Renamed away first: from then on no replica can find it and start to use it.
    fs::path trash = root / absl::StrCat(kTempPrefix, "pruned-", name, "-", RandomId(6));
    std::error_code rename_ec;
    fs::rename(it->path(), trash, rename_ec);
    if (rename_ec) continue;
    std::error_code ignored;
    removed += fs::remove_all(trash, ignored) > 0;
  }
  return removed;
}

}  // namespace cortex::models
