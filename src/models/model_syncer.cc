#include "models/model_syncer.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <cstdlib>

#include "common/status.h"
#include "common/util.h"

namespace cortex::models {
namespace {

using json = nlohmann::json;

uint64_t TotalSize(const ModelVersion& version) {
  uint64_t total = 0;
  for (const ModelFile& file : version.files) total += file.size;
  return total;
}

}  // namespace

ModelSyncer::ModelSyncer(SyncerOptions options, const ModelStore& store)
    : options_(std::move(options)), store_(store), cache_(options_.cache_root, store) {}

ModelSyncer::~ModelSyncer() { Stop(); }

absl::StatusOr<ModelSyncer::Versions> ModelSyncer::SyncModel(const ModelSource& source,
                                                             const Versions& before) {
  ASSIGN_OR_RETURN(ModelTree tree, ReadModel(options_.models, source, store_));
  Versions versions;
  for (const ModelVersion& version : tree.versions) {
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
      options_.log(absl::StrCat("model ", source.name, " version ", version.version,
                                " downloaded (", version.files.size(), " file",
                                version.files.size() == 1 ? "" : "s", ", ",
                                FormatBytes(TotalSize(version)), ")"));
    }
    versions[version.version] = {path->string(), version.timestamp};
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
    if (!synced_once_) return versions.status();
    if (absl::IsNotFound(versions.status())) continue;  // removed upstream
    options_.log(absl::StrCat("model ", source.name, ": ", versions.status().message(),
                              "; keeping the versions it had"));
    if (old != snapshot_.end()) next.insert(*old);
  }
  bool changed = !synced_once_ || next != snapshot_;
  if (changed) {
    int64_t generation = generation_.load() + 1;
    RETURN_IF_ERROR(WriteManifest(next, generation));
    if (synced_once_) LogChanges(snapshot_, next);
    snapshot_ = std::move(next);
    generation_.store(generation);
  }
  synced_once_ = true;
  return absl::OkStatus();
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
      entries[std::to_string(version)] = {{"path", entry.path}, {"timestamp", entry.timestamp}};
    }
    models[name] = {{"versions", std::move(entries)}};
  }
  json manifest = {{"generation", generation}, {"models", std::move(models)}};
  return WriteFileAtomic(options_.manifest_path, manifest.dump(2));
}

json ModelSyncer::Manifest() const {
  absl::StatusOr<std::string> text = ReadFile(options_.manifest_path);
  if (!text.ok()) return json();
  return json::parse(*text, nullptr, false);
}

void ModelSyncer::Start(std::chrono::milliseconds every) {
  cache_.RemoveAbandoned(3600);
  poller_ = std::thread([this, every] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(every))) return;
      }
      absl::Status synced = Sync();
      if (!synced.ok()) options_.log(absl::StrCat("models: ", synced.message()));
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
