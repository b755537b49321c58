#include "operator/job_planner.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
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

// Groups JSON values into JSON-array batches of `size`, each within the message limit.
absl::StatusOr<std::vector<std::string>> Chunk(const std::vector<std::string>& items, int size) {
  std::vector<std::string> batches;
  for (size_t i = 0; i < items.size(); i += static_cast<size_t>(size)) {
    std::string batch = "[";
    for (size_t j = i; j < std::min(items.size(), i + size); ++j) {
      if (j > i) batch += ",";
      batch += items[j];
    }
    batch += "]";
    if (batch.size() > kMaxItemBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot enqueue message because its size (", batch.size(),
                       " bytes) exceeds the 262144 bytes limit; use a smaller batch_size"));
    }
    batches.push_back(std::move(batch));
  }
  return batches;
}

// The files a lister names: local paths (absolute or file://), directories walked recursively,
// filtered by the includes and excludes globs (matched against the path as written).
absl::StatusOr<std::vector<std::string>> ListFiles(const json& lister, const std::string& where) {
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
    std::error_code ec;
    std::vector<std::string> found;
    if (fs::is_directory(local, ec)) {
      for (auto it = fs::recursive_directory_iterator(local, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path().string());
      }
    } else if (fs::is_regular_file(local, ec)) {
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

// The JSON values of a file, one per line (JSON lines; blank lines are skipped).
absl::Status ReadJsonValues(const std::string& shown_path, std::vector<std::string>& out) {
  std::string content;
  if (absl::StartsWith(shown_path, "s3://")) {
    auto location = s3::ParseS3Path(shown_path);
    if (!location.ok()) return location.status();
    auto object = S3FromEnvironment().Get(location->bucket, location->key);
    if (!object.ok()) return object.status();
    content = std::move(*object);
  } else {
    std::string path = absl::StartsWith(shown_path, "file://") ? shown_path.substr(7) : shown_path;
    auto text = ReadFile(path);
    if (!text.ok()) return absl::NotFoundError(absl::StrCat(shown_path, ": cannot open file"));
    content = std::move(*text);
  }
  std::istringstream in(content);
  std::string line;
  int64_t index = 0;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (JsonNestingDepth(line) > kMaxJsonDepth) {
      return absl::InvalidArgumentError(absl::StrCat(
          shown_path, ": item ", index, " is nested more than ", kMaxJsonDepth, " levels deep"));
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
    out.push_back(std::move(item));
    ++index;
  }
  return absl::OkStatus();
}

}  // namespace

s3::Client S3FromEnvironment() {
  s3::ClientOptions options;
  if (const char* region = std::getenv("AWS_REGION"); region && *region) options.region = region;
  if (const char* endpoint = std::getenv("CORTEX_S3_ENDPOINT"); endpoint && *endpoint) {
    options.endpoint = endpoint;
  }
  options.credentials = s3::CredentialsFromEnvironment();
  return s3::Client(options);
}

absl::StatusOr<JobPlan> PlanJob(const json& submission) {
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
  RETURN_IF_ERROR(PositiveInt(submission, "workers", "").status());
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
    std::vector<std::string> encoded;
    for (size_t i = 0; i < items->size(); ++i) {
      std::string item = (*items)[i].dump();
      if (item.size() > kMaxItemBytes) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i, " has size ", item.size(),
                                                       " bytes which exceeds the limit (262144 "
                                                       "bytes)"));
      }
      encoded.push_back(std::move(item));
    }
    ASSIGN_OR_RETURN(plan.batches, Chunk(encoded, batch_size));
    return plan;
  }
  bool delimited = submission.contains("delimited_files");
  const char* key = delimited ? "delimited_files" : "file_path_lister";
  const json& lister = submission[key];
  RETURN_IF_ERROR(check_keys(lister, key, {"s3_paths", "includes", "excludes", "batch_size"}));
  std::string where = absl::StrCat(key, ": ");
  ASSIGN_OR_RETURN(int batch_size, PositiveInt(lister, "batch_size", where));
  ASSIGN_OR_RETURN(plan.listed, ListFiles(lister, where));
  std::vector<std::string> items;
  if (delimited) {
    for (const auto& file : plan.listed) RETURN_IF_ERROR(ReadJsonValues(file, items));
    if (items.empty()) {
      return absl::InvalidArgumentError("unable to enqueue batches because no data was found");
    }
  } else {
    for (const auto& file : plan.listed) items.push_back(json(file).dump());
  }
  ASSIGN_OR_RETURN(plan.batches, Chunk(items, batch_size));
  return plan;
}

}  // namespace cortex::op
