// An in-memory Kubernetes API for the backend's tests: objects by kind and name, a resource
// version bumped by every write, conflicts on a stale replace, label-selector lists, and the
// scale subresource. No controllers run: tests put the pods the Deployments would have.
#pragma once

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/kubernetes/kube_api.h"

namespace cortex::backends::kubernetes::testing {

class FakeKubeApi : public KubeApi {
 public:
  using json = nlohmann::json;

  absl::StatusOr<json> Get(const Resource& r, const std::string& name) override {
    calls.push_back(absl::StrCat("get ", r.plural, "/", name));
    auto it = objects_[r.plural].find(name);
    if (it == objects_[r.plural].end()) return NotFound(r, name);
    return it->second;
  }

  absl::StatusOr<json> List(const Resource& r, const std::string& selector) override {
    calls.push_back(absl::StrCat("list ", r.plural, selector.empty() ? "" : "?", selector));
    if (!list_error.ok()) return list_error;
    json items = json::array();
    for (const auto& [name, object] : objects_[r.plural]) {
      if (Matches(object, selector)) items.push_back(object);
    }
    return json{{"kind", absl::StrCat(r.kind, "List")},
                {"metadata", {{"resourceVersion", std::to_string(version_)}}},
                {"items", items}};
  }

  absl::StatusOr<json> Create(const Resource& r, const json& object) override {
    std::string name = object["metadata"]["name"];
    calls.push_back(absl::StrCat("create ", r.plural, "/", name));
    if (objects_[r.plural].count(name)) {
      return absl::AlreadyExistsError(absl::StrCat(r.plural, " \"", name, "\" already exists"));
    }
    return Store(r, object);
  }

  absl::StatusOr<json> Replace(const Resource& r, const json& object) override {
    std::string name = object["metadata"]["name"];
    calls.push_back(absl::StrCat("replace ", r.plural, "/", name));
    if (before_replace) before_replace(r, name);
    auto it = objects_[r.plural].find(name);
    if (it == objects_[r.plural].end()) return NotFound(r, name);
    if (object["metadata"].value("resourceVersion", "") !=
        it->second["metadata"]["resourceVersion"]) {
      return absl::AbortedError(absl::StrCat(
          "Operation cannot be fulfilled on ", r.plural, " \"", name,
          "\": the object has been modified; please apply your changes to the latest version"));
    }
    return Store(r, object);
  }

  absl::Status Scale(const Resource& r, const std::string& name, int replicas) override {
    calls.push_back(absl::StrCat("scale ", r.plural, "/", name, " ", replicas));
    auto it = objects_[r.plural].find(name);
    if (it == objects_[r.plural].end()) return NotFound(r, name);
    json object = it->second;
    object["spec"]["replicas"] = replicas;
    return Store(r, object).status();
  }

  absl::Status Delete(const Resource& r, const std::string& name) override {
    calls.push_back(absl::StrCat("delete ", r.plural, "/", name));
    auto it = objects_[r.plural].find(name);
    if (it == objects_[r.plural].end()) return NotFound(r, name);
    json gone = it->second;
    objects_[r.plural].erase(it);
    gone["metadata"]["resourceVersion"] = std::to_string(++version_);
    history_.push_back({version_, r.plural, {"DELETED", gone}});
    return absl::OkStatus();
  }

  // The recorded changes after `resource_version`, at once (no waiting for more); OutOfRange
  // when that version is older than the history kept (see Compact).
  absl::Status Watch(const Resource& r, const std::string& selector,
                     const std::string& resource_version, int /*timeout_seconds*/,
                     const std::function<bool(const WatchEvent&)>& on_event) override {
    calls.push_back(absl::StrCat("watch ", r.plural, "@", resource_version));
    if (!watch_error.ok()) return watch_error;
    int64_t from = 0;
    if (!absl::SimpleAtoi(resource_version, &from) || from < compacted_) {
      return absl::OutOfRangeError(
          absl::StrCat("too old resource version: ", resource_version, " (", compacted_, ")"));
    }
    for (const auto& [version, plural, event] : history_) {
      if (version <= from || plural != r.plural || !Matches(event.object, selector)) continue;
      if (!on_event(event)) break;
    }
    return absl::OkStatus();
  }

  // Watch returns at once: there is nothing in progress to end.
  void CancelWatches() override {}

  absl::StatusOr<std::string> PodLog(const std::string& pod, const std::string& container,
                                     const std::string& since_time, int64_t limit_bytes) override {
    calls.push_back(
        absl::StrCat("log ", pod, "/", container, since_time.empty() ? "" : " since ", since_time));
    auto it = logs.find(pod);
    if (it == logs.end()) return NotFound(kPods, pod);
    std::string out;
    std::vector<absl::string_view> lines = absl::StrSplit(it->second, '\n');
    for (size_t n = 0; n < lines.size(); ++n) {
      absl::string_view line = lines[n];
      // RFC 3339 stamps of one form compare as strings; sinceTime has whole seconds.
      if (line.empty() || (!since_time.empty() && line.substr(0, 19) < since_time.substr(0, 19))) {
        continue;
      }
      absl::StrAppend(&out, line, n + 1 < lines.size() ? "\n" : "");  // a last line may be cut
    }
    if (static_cast<int64_t>(out.size()) > limit_bytes) out.resize(limit_bytes);
    return out;
  }

  // ---- for tests ----
  // What another writer would do: stores `object` as is (a new resource version).
  void Put(const Resource& r, json object) { (void)Store(r, std::move(object)); }
  json* Find(const Resource& r, const std::string& name) {
    auto it = objects_[r.plural].find(name);
    return it == objects_[r.plural].end() ? nullptr : &it->second;
  }
  size_t Count(const Resource& r) { return objects_[r.plural].size(); }
  // Forgets the changes recorded so far: a watch from an older version gets OutOfRange (the
  // API server's 410 Gone after its etcd compacted them).
  void Compact() {
    compacted_ = version_;
    history_.clear();
  }
  int64_t version() const { return version_; }
  // Writes of these kinds (not gets and lists) since the last ClearCalls.
  std::vector<std::string> Writes() const {
    std::vector<std::string> out;
    for (const auto& c : calls) {
      if (!c.starts_with("get ") && !c.starts_with("list ")) out.push_back(c);
    }
    return out;
  }

  std::vector<std::string> calls;
  absl::Status list_error;   // what List answers when not OK (an API server that is away)
  absl::Status watch_error;  // what Watch answers when not OK
  // Each pod's log: lines led by an RFC 3339 timestamp and a space, as timestamps=true gives.
  std::map<std::string, std::string> logs;
  // Runs inside Replace before the version check (e.g. a concurrent writer).
  std::function<void(const Resource&, const std::string&)> before_replace;

 private:
  static absl::Status NotFound(const Resource& r, const std::string& name) {
    return absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found"));
  }

  static bool Matches(const json& object, const std::string& selector) {
    if (selector.empty()) return true;
    const json labels = object["metadata"].value("labels", json::object());
    for (absl::string_view term : absl::StrSplit(selector, ',')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(term, absl::MaxSplits('=', 1));
      if (!labels.contains(kv.first) || labels[kv.first] != kv.second) return false;
    }
    return true;
  }

  absl::StatusOr<json> Store(const Resource& r, json object) {
    object["metadata"]["resourceVersion"] = std::to_string(++version_);
    std::string name = object["metadata"]["name"];
    bool added = objects_[r.plural].count(name) == 0;
    objects_[r.plural][name] = object;
    history_.push_back({version_, r.plural, {added ? "ADDED" : "MODIFIED", object}});
    return object;
  }

  struct Change {
    int64_t version;
    std::string plural;
    WatchEvent event;
  };

  std::map<std::string, std::map<std::string, json>> objects_;
  int64_t version_ = 0;
  std::vector<Change> history_;
  int64_t compacted_ = 0;  // watches from before this version are refused
};

}  // namespace cortex::backends::kubernetes::testing
