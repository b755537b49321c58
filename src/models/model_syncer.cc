#include "models/model_syncer.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "common/status.h"
#include "common/util.h"

namespace cortex::models {
namespace {

using json = nlohmann::json;

// "model m version 3 downloaded (2 files, 1.5 MiB)"
std::string Downloaded(const std::string& name, const ModelVersion& version) {
  uint64_t total = 0;
  for (const ModelFile& file : version.files) total += file.size;
  return absl::StrCat("model ", name, " version ", version.version, " downloaded (",
                      version.files.size(), " file", version.files.size() == 1 ? "" : "s", ", ",
                      FormatBytes(total), ")");
}

}  // namespace

ModelSyncer::ModelSyncer(SyncerOptions options, const ModelStore& store)
    : options_(std::move(options)), store_(store), cache_(options_.cache_root, store) {
  if (options_.wants_path.empty()) options_.wants_path = options_.manifest_path.string() + ".wants";
}

ModelSyncer::~ModelSyncer() { Stop(); }

absl::StatusOr<ModelSyncer::Versions> ModelSyncer::SyncModel(const ModelSource& source,
                                                             const Versions& before) {
  ASSIGN_OR_RETURN(ModelTree tree, ReadModel(options_.models, source, store_));
  trees_[source.name] = tree;
  Versions versions;
  for (const ModelVersion& version : tree.versions) {
    if (caching()) {  // fetched when wanted (ServeWants)
      versions[version.version] = {
          cache_.Has(tree, version) ? cache_.PathOf(tree, version).string() : "", version.timestamp,
          ""};
      continue;
    }
    bool fetched = !cache_.Has(tree, version);
    absl::StatusOr<std::filesystem::path> path = cache_.Fetch(tree, version);
    if (!path.ok()) {
      if (!synced_once_) return path.status();
      options_.log(absl::StrCat("model ", source.name, " version ", version.version, ": ",
                                path.status().message()));
      if (auto old = before.find(version.version); old != before.end()) {
        versions.insert(*old);
      }
      continue;
    }
    if (fetched) {
      options_.log(Downloaded(source.name, version));
    }
    versions[version.version] = {path->string(), version.timestamp, ""};
  }
  return versions;
}

absl::Status ModelSyncer::Sync() {
  absl::StatusOr<std::vector<ModelSource>> sources = ListSources(options_.models, store_);
  if (!sources.ok()) {
    if (!synced_once_) return sources.status();
    options_.log(
        absl::StrCat("models: ", sources.status().message(), "; keeping the models it had"));
    return absl::OkStatus();
  }
  Snapshot next;
  for (const ModelSource& source : *sources) {
    auto old = snapshot_.find(source.name);
    const Versions none;
    absl::StatusOr<Versions> versions =
        SyncModel(source, old == snapshot_.end() ? none : old->second);
    if (versions.ok()) {
      next[source.name] = *std::move(versions);
      continue;
    }
    // A model of models.dir with a bad layout (one being uploaded, say) is left out, as later
    // polls do: the directory's other models still serve.
    bool in_dir = absl::StartsWith(source.field, "models: dir: ");
    if (!synced_once_ && !(in_dir && absl::IsInvalidArgument(versions.status()))) {
      return versions.status();
    }
    if (absl::IsNotFound(versions.status())) continue;  // removed upstream
    options_.log(absl::StrCat("model ", source.name, ": ", versions.status().message(),
                              "; keeping the versions it had"));
    if (old != snapshot_.end()) next.insert(*old);
  }
  if (!synced_once_ || next != snapshot_) {
    if (synced_once_) LogChanges(snapshot_, next);
    RETURN_IF_ERROR(Publish(std::move(next)));
  }
  synced_once_ = true;
  return absl::OkStatus();
}

absl::Status ModelSyncer::ServeWants() {
  if (!caching()) return absl::OkStatus();
  // The wants file is small: read it every time, and serve it when its seq is new (its mtime
  // can miss a rewrite within the file system's clock tick).
  absl::StatusOr<std::string> text = ReadFile(options_.wants_path);
  if (!text.ok()) return absl::OkStatus();
  json wants = json::parse(*text, nullptr, false);
  if (!wants.is_object() || !wants.value("wants", json()).is_array() ||
      !wants.value("seq", json()).is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options_.wants_path.string(), " is not a wants document"));
  }
  int64_t seq = wants["seq"].get<int64_t>();
  if (seq <= wants_seq_) return absl::OkStatus();  // served already (or older than what was)
  // The versions to keep on disk: the first disk_cache_size wanted ones that exist.
  std::vector<std::pair<std::string, int64_t>> keep;
  for (const json& want : wants["wants"]) {
    if (static_cast<int>(keep.size()) >= options_.models.disk_cache_size) break;
    if (!want.is_array() || want.size() != 2 || !want[0].is_string() || !want[1].is_string()) {
      continue;
    }
    int64_t version = 0;
    std::string name = want[0];
    if (!absl::SimpleAtoi(want[1].get<std::string>(), &version)) continue;
    auto model = snapshot_.find(name);
    if (model == snapshot_.end() || !model->second.count(version)) continue;
    std::pair<std::string, int64_t> key{name, version};
    if (std::find(keep.begin(), keep.end(), key) == keep.end()) keep.push_back(key);
  }
  auto kept = [&](const std::string& name, int64_t version) {
    return std::find(keep.begin(), keep.end(), std::make_pair(name, version)) != keep.end();
  };
  // Evict first, so that the disk never holds more than disk_cache_size versions, and publish
  // the eviction before fetching: no manifest names a deleted directory while a fetch runs.
  // Two models can share a directory (the same source): it goes only when neither is kept.
  std::set<std::string> kept_paths;
  for (const auto& [name, versions] : snapshot_) {
    for (const auto& [version, entry] : versions) {
      if (!entry.path.empty() && kept(name, version)) kept_paths.insert(entry.path);
    }
  }
  Snapshot next = snapshot_;
  std::map<std::string, std::string> evicted;  // directory -> "model a version 1"
  for (auto& [name, versions] : next) {
    for (auto& [version, entry] : versions) {
      if (entry.path.empty() || kept(name, version)) continue;
      if (!kept_paths.count(entry.path)) {
        evicted.emplace(entry.path, absl::StrCat("model ", name, " version ", version));
      }
      entry.path.clear();
    }
  }
  if (next != snapshot_) RETURN_IF_ERROR(Publish(next));  // the workers stop using them
  for (const auto& [path, what] : evicted) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    options_.log(
        ec ? absl::StrCat(what, ": cannot evict ", path, " from the disk cache: ", ec.message())
           : absl::StrCat(what, " evicted from the disk cache"));
  }
  for (const auto& key : keep) {
    const auto& [name, version] = key;
    int64_t wanted = version;  // clang 14 cannot capture a structured binding
    Entry& entry = next[name][version];
    if (!entry.path.empty()) continue;
    const ModelTree& tree = trees_.at(name);
    auto it = std::find_if(tree.versions.begin(), tree.versions.end(),
                           [&](const ModelVersion& v) { return v.version == wanted; });
    if (it == tree.versions.end()) continue;
    absl::StatusOr<std::filesystem::path> path = cache_.Fetch(tree, *it);
    entry.error = path.ok() ? "" : std::string(path.status().message());
    if (path.ok()) {
      entry.path = path->string();
      options_.log(Downloaded(name, *it));
    } else {
      options_.log(absl::StrCat("model ", name, " version ", version, ": ", entry.error));
    }
  }
  wants_seq_ = seq;
  return Publish(std::move(next));
}

absl::Status ModelSyncer::Publish(Snapshot snapshot) {
  int64_t generation = generation_.load() + 1;
  RETURN_IF_ERROR(WriteManifest(snapshot, generation));
  if (caching()) RemoveUnlisted(snapshot);
  snapshot_ = std::move(snapshot);
  generation_.store(generation);
  return absl::OkStatus();
}

void ModelSyncer::RemoveUnlisted(const Snapshot& snapshot) {
  std::set<std::string> listed;
  for (const auto& [name, versions] : snapshot) {
    for (const auto& [version, entry] : versions) {
      if (!entry.path.empty()) listed.insert(std::filesystem::path(entry.path).filename());
    }
  }
  std::error_code ec;
  for (std::filesystem::directory_iterator it(options_.cache_root, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename();
    if (name.rfind(".tmp-", 0) == 0 || listed.count(name)) continue;
    std::error_code ignored;
    std::filesystem::remove_all(it->path(), ignored);
  }
}

void ModelSyncer::LogChanges(const Snapshot& before, const Snapshot& after) const {
  for (const auto& [name, versions] : after) {
    auto old = before.find(name);
    for (const auto& [version, entry] : versions) {
      if (old == before.end() || !old->second.count(version)) {
        options_.log(absl::StrCat("model ", name, " version ", version, " is available"));
      } else if (!(old->second.at(version) == entry)) {
        options_.log(absl::StrCat("model ", name, " version ", version, " was updated"));
      }
    }
  }
  for (const auto& [name, versions] : before) {
    auto now = after.find(name);
    if (now == after.end()) {
      options_.log(absl::StrCat("model ", name, " was removed upstream"));
      continue;
    }
    for (const auto& [version, entry] : versions) {
      if (!now->second.count(version)) {
        options_.log(absl::StrCat("model ", name, " version ", version, " was removed upstream"));
      }
    }
  }
}

absl::Status ModelSyncer::WriteManifest(const Snapshot& snapshot, int64_t generation) const {
  json models = json::object();
  for (const auto& [name, versions] : snapshot) {
    json entries = json::object();
    for (const auto& [version, entry] : versions) {
      json item = {{"path", entry.path.empty() ? json() : json(entry.path)},
                   {"timestamp", entry.timestamp}};
      if (!entry.error.empty()) item["error"] = entry.error;
      entries[std::to_string(version)] = std::move(item);
    }
    models[name] = {{"versions", std::move(entries)}};
  }
  json manifest = {{"generation", generation}, {"models", std::move(models)}};
  if (caching()) manifest["wants_seq"] = wants_seq_;
  return WriteFileAtomic(options_.manifest_path, manifest.dump(2));
}

void ModelSyncer::Start(std::chrono::milliseconds every) {
  cache_.RemoveAbandoned(3600);
  poller_ = std::thread([this, every] {
    // With caching, the wants are looked at often: a worker waits for what it asked.
    auto tick = caching() ? std::min(every, std::chrono::milliseconds(20)) : every;
    auto next_sync = std::chrono::steady_clock::now() + every;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(tick))) return;
      }
      if (absl::Status served = ServeWants(); !served.ok()) {
        options_.log(absl::StrCat("models: ", served.message()));
      }
      if (std::chrono::steady_clock::now() < next_sync) continue;
      next_sync = std::chrono::steady_clock::now() + every;
      if (absl::Status synced = Sync(); !synced.ok()) {
        options_.log(absl::StrCat("models: ", synced.message()));
      }
    }
  });
}

void ModelSyncer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

std::chrono::milliseconds ModelPollInterval() {
  double seconds = 10;
  if (const char* text = std::getenv("CORTEX_MODEL_POLL_S"); text && *text) {
    double parsed = 0;
    if (absl::SimpleAtod(text, &parsed) && parsed > 0) seconds = parsed;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

}  // namespace cortex::models
