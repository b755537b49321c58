#include "operator/job_planner.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "common/glob.h"
#include "common/network_json.h"
#include "common/status.h"
#include "common/util.h"
#include "s3/s3_client.h"

namespace cortex::op {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxItemBytes = 256 * 1024;  // per item and per batch (spec §11)

absl::StatusOr<int> PositiveInt(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be specified"));
  }
  bool too_small = !it->is_number_integer() ||
                   (!it->is_number_unsigned() && it->get<int64_t>() < 1) ||
                   (it->is_number_unsigned() && it->get<uint64_t>() < 1);
  if (too_small) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be an integer >= 1"));
  }
  // Positive integers parse as unsigned; anything past int's range was stored truncated.
  if (it->is_number_unsigned() ? it->get<uint64_t>() > uint64_t{INT32_MAX}
                               : it->get<int64_t>() > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, key, ": must be at most ", INT32_MAX, " (got ", it->dump(), ")"));
  }
  return static_cast<int>(it->get<int64_t>());
}

// Groups JSON values into JSON-array batches of `size` as they come, each within the message
// limit, and at most `max_batches` of them.
class Batcher {
 public:
  Batcher(int size, int64_t max_batches) : size_(size), max_batches_(max_batches) {}

  absl::Status Add(const std::string& item) {
    if (count_ == size_) RETURN_IF_ERROR(Flush());
    current_ += count_ == 0 ? "[" : ",";
    current_ += item;
    ++count_;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> Finish() && {
    if (count_ > 0) RETURN_IF_ERROR(Flush());
    return std::move(batches_);
  }

 private:
  absl::Status Flush() {
    current_ += "]";
    if (current_.size() > kMaxItemBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot enqueue message because its size (", current_.size(),
                       " bytes) exceeds the 262144 bytes limit; use a smaller batch_size"));
    }
    if (static_cast<int64_t>(batches_.size()) >= max_batches_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the job would have more than ", max_batches_,
          " batches, the most this cluster takes (limits: batches_per_job); use a larger "
          "batch_size"));
    }
    batches_.push_back(std::move(current_));
    current_.clear();
    count_ = 0;
    return absl::OkStatus();
  }

  int size_;
  int64_t max_batches_;
  std::vector<std::string> batches_;
  std::string current_;
  int count_ = 0;
};

bool IsWithin(const fs::path& path, const fs::path& root) {
  fs::path rel = path.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

// `local` resolved (symbolic links followed) if it lies inside a directory the cluster allows.
absl::StatusOr<fs::path> Confine(const std::string& local, const std::string& shown,
                                 const PlanLimits& limits, const std::string& where) {
  if (limits.allowed_local_paths.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(where, "s3_paths: ", shown,
                     ": this cluster reads no local paths (list the directories jobs may read in "
                     "allowed_local_paths of the cluster configuration, see docs/security.md)"));
  }
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(local, ec);
  if (!ec) {
    for (const auto& root : limits.allowed_local_paths) {
      fs::path allowed = fs::weakly_canonical(root, ec);
      if (!ec && IsWithin(resolved, allowed)) return resolved;
    }
  }
  std::vector<std::string> roots;
  for (const auto& root : limits.allowed_local_paths) roots.push_back(root.string());
  return absl::PermissionDeniedError(absl::StrCat(
      where, "s3_paths: ", shown,
      ": is outside the directories this cluster lets jobs read (allowed_local_paths: ",
      absl::StrJoin(roots, ", "), ")"));
}

// The files a lister names: local paths (absolute or file://), directories walked recursively,
// filtered by the includes and excludes globs (matched against the path as written).
absl::StatusOr<std::vector<std::string>> ListFiles(const json& lister, const PlanLimits& limits,
                                                   const std::string& where) {
  auto paths = lister.find("s3_paths");
  if (paths == lister.end() || !paths->is_array() || paths->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "s3_paths: must be a list with at least one path"));
  }
  auto globs = [&](const char* key) -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> out;
    auto it = lister.find(key);
    if (it == lister.end() || it->is_null()) return out;
    if (!it->is_array())
      return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be a list"));
    for (const auto& g : *it) {
      if (!g.is_string())
        return absl::InvalidArgumentError(absl::StrCat(where, key, ": must be strings"));
      out.push_back(g.get<std::string>());
    }
    return out;
  };
  ASSIGN_OR_RETURN(std::vector<std::string> includes, globs("includes"));
  ASSIGN_OR_RETURN(std::vector<std::string> excludes, globs("excludes"));
  std::vector<std::string> files;
  for (const auto& p : *paths) {
    if (!p.is_string())
      return absl::InvalidArgumentError(absl::StrCat(where, "s3_paths: must be strings"));
    std::string path = p.get<std::string>();
    auto keep = [&](const std::string& shown) {
      auto matches = [&](const std::string& glob) { return GlobMatch(glob, shown); };
      if (!includes.empty() && std::none_of(includes.begin(), includes.end(), matches)) return;
      if (std::any_of(excludes.begin(), excludes.end(), matches)) return;
      files.push_back(shown);
    };
    if (absl::StartsWith(path, "s3://")) {
      auto location = s3::ParseS3Path(path);
      if (!location.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "s3_paths: ", std::string(location.status().message())));
      }
      auto objects = S3FromEnvironment().List(location->bucket, location->key);
      if (!objects.ok()) {
        return absl::Status(
            objects.status().code(),
            absl::StrCat(where, "s3_paths: ", path, ": ", std::string(objects.status().message())));
      }
      for (const auto& object : *objects) {
        keep(absl::StrCat("s3://", location->bucket, "/", object.key));
      }
      continue;
    }
    bool scheme = absl::StartsWith(path, "file://");
    std::string local = scheme ? path.substr(7) : path;
    if (local.empty() || local[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "s3_paths: ", path,
                       ": must be an absolute local path or a file:// url (or s3://)"));
    }
    ASSIGN_OR_RETURN(fs::path resolved, Confine(local, path, limits, where));
    std::error_code ec;
    std::vector<std::string> found;
    if (fs::is_directory(resolved, ec)) {
      // Directory links are not followed; a file link that leads outside is left out.
      for (auto it = fs::recursive_directory_iterator(local, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code file_ec;
        if (it->is_regular_file(file_ec) &&
            (!it->is_symlink(file_ec) || Confine(it->path().string(), path, limits, where).ok())) {
          found.push_back(it->path().string());
        }
      }
    } else if (fs::is_regular_file(resolved, ec)) {
      found.push_back(local);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, "s3_paths: ", path, ": not found"));
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) keep(scheme ? "file://" + f : f);
  }
  if (files.empty()) return absl::InvalidArgumentError("no s3 files match search criteria");
  return files;
}

// Each line of `in` (without its newline) to `line_fn`; a line longer than `max_line` is an error.
absl::Status ForEachLine(std::istream& in, size_t max_line, const std::string& shown_path,
                         const std::function<absl::Status(std::string_view)>& line_fn) {
  std::string line;
  std::array<char, 64 * 1024> block;
  while (in) {
    in.read(block.data(), block.size());
    std::string_view chunk(block.data(), static_cast<size_t>(in.gcount()));
    for (size_t newline; (newline = chunk.find('\n')) != std::string_view::npos;) {
      line.append(chunk.substr(0, newline));
      chunk.remove_prefix(newline + 1);
      if (line.size() > max_line) break;
      RETURN_IF_ERROR(line_fn(line));
      line.clear();
    }
    line.append(chunk);
    if (line.size() > max_line) {
      return absl::InvalidArgumentError(absl::StrCat(
          shown_path, ": a line is longer than ", max_line, " bytes (the item limit is 262144)"));
    }
  }
  if (!line.empty()) RETURN_IF_ERROR(line_fn(line));
  return absl::OkStatus();
}

// The JSON values of a file, one per line (JSON lines; blank lines are skipped), read a block at
// a time into `batcher`.
absl::Status ReadJsonValues(const std::string& shown_path, const PlanLimits& limits,
                            Batcher& batcher) {
  std::string content;
  std::unique_ptr<std::istream> in;
  if (absl::StartsWith(shown_path, "s3://")) {
    auto location = s3::ParseS3Path(shown_path);
    if (!location.ok()) return location.status();
    auto object = S3FromEnvironment().Get(location->bucket, location->key);
    if (!object.ok()) return object.status();
    in = std::make_unique<std::istringstream>(std::move(*object));
  } else {
    std::string path = absl::StartsWith(shown_path, "file://") ? shown_path.substr(7) : shown_path;
    // Checked again: the file may have changed since it was listed.
    ASSIGN_OR_RETURN(fs::path resolved, Confine(path, shown_path, limits, ""));
    auto file = std::make_unique<std::ifstream>(resolved, std::ios::binary);
    if (!*file) return absl::NotFoundError(absl::StrCat(shown_path, ": cannot open file"));
    in = std::move(file);
  }
  int64_t index = 0;
  return ForEachLine(*in, 4 * kMaxItemBytes, shown_path, [&](std::string_view line) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return absl::OkStatus();
    if (JsonNestingDepth(line) > limits.json_depth) {
      return absl::InvalidArgumentError(absl::StrCat(shown_path, ": item ", index,
                                                     " is nested more than ", limits.json_depth,
                                                     " levels deep"));
    }
    json value = json::parse(line, nullptr, false);
    if (value.is_discarded()) {
      return absl::InvalidArgumentError(
          absl::StrCat(shown_path, ": item ", index, " is not valid JSON (one value per line)"));
    }
    std::string item = value.dump();
    if (item.size() > kMaxItemBytes) {
      return absl::InvalidArgumentError(absl::StrCat(shown_path, ": item ", index, " has size ",
                                                     item.size(),
                                                     " bytes which exceeds the limit (262144 "
                                                     "bytes)"));
    }
    ++index;
    return batcher.Add(item);
  });
}

}  // namespace

s3::Client S3FromEnvironment() { return s3::Client(s3::ClientOptionsFromEnvironment()); }

absl::StatusOr<JobPlan> PlanJob(const json& submission, const PlanLimits& limits) {
  if (!submission.is_object()) {
    return absl::InvalidArgumentError("the job submission must be a JSON object");
  }
  for (const auto& item : submission.items()) {
    const std::string& key = item.key();
    static const char* kKeys[] = {"workers",          "config",          "item_list",
                                  "file_path_lister", "delimited_files", "timeout"};
    if (std::none_of(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return key == k; })) {
      return absl::InvalidArgumentError(absl::StrCat("key \"", key, "\" is not supported"));
    }
  }
  ASSIGN_OR_RETURN(int workers, PositiveInt(submission, "workers", ""));
  if (workers > limits.max_workers) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers: ", workers, " is more than this cluster allows (",
                     limits.max_workers, ", limits: workers_per_job)"));
  }
  if (submission.contains("config") && !submission["config"].is_object() &&
      !submission["config"].is_null()) {
    return absl::InvalidArgumentError("config: must be a map");
  }
  int sources = submission.contains("item_list") + submission.contains("file_path_lister") +
                submission.contains("delimited_files");
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "please specify exactly one of the following fields: item_list, file_path_lister, "
        "delimited_files");
  }
  // Unknown keys inside a source are errors too (a typo like "include" must not pass silently).
  auto check_keys = [](const json& section, const char* name,
                       std::initializer_list<const char*> allowed) -> absl::Status {
    if (!section.is_object())
      return absl::InvalidArgumentError(absl::StrCat(name, ": must be a map"));
    for (const auto& item : section.items()) {
      const std::string& key = item.key();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* k) { return key == k; })) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": key \"", key, "\" is not supported"));
      }
    }
    return absl::OkStatus();
  };
  JobPlan plan;
  if (submission.contains("item_list")) {
    const json& list = submission["item_list"];
    RETURN_IF_ERROR(check_keys(list, "item_list", {"items", "batch_size"}));
    ASSIGN_OR_RETURN(int batch_size, PositiveInt(list, "batch_size", "item_list: "));
    auto items = list.find("items");
    if (items == list.end() || !items->is_array() || items->empty()) {
      return absl::InvalidArgumentError("item_list: items: must be a list with at least one item");
    }
    Batcher batcher(batch_size, limits.max_batches);
    for (size_t i = 0; i < items->size(); ++i) {
      std::string item = (*items)[i].dump();
      if (item.size() > kMaxItemBytes) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i, " has size ", item.size(),
                                                       " bytes which exceeds the limit (262144 "
                                                       "bytes)"));
      }
      RETURN_IF_ERROR(batcher.Add(item));
    }
    ASSIGN_OR_RETURN(plan.batches, std::move(batcher).Finish());
    return plan;
  }
  bool delimited = submission.contains("delimited_files");
  const char* key = delimited ? "delimited_files" : "file_path_lister";
  const json& lister = submission[key];
  RETURN_IF_ERROR(check_keys(lister, key, {"s3_paths", "includes", "excludes", "batch_size"}));
  std::string where = absl::StrCat(key, ": ");
  ASSIGN_OR_RETURN(int batch_size, PositiveInt(lister, "batch_size", where));
  ASSIGN_OR_RETURN(plan.listed, ListFiles(lister, limits, where));
  Batcher batcher(batch_size, limits.max_batches);
  for (const auto& file : plan.listed) {
    RETURN_IF_ERROR(delimited ? ReadJsonValues(file, limits, batcher)
                              : batcher.Add(json(file).dump()));
  }
  ASSIGN_OR_RETURN(plan.batches, std::move(batcher).Finish());
  if (delimited && plan.batches.empty()) {
    return absl::InvalidArgumentError("unable to enqueue batches because no data was found");
  }
  return plan;
}

}  // namespace cortex::op
