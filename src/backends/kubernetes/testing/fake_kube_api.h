// An in-memory Kubernetes API for the backend's tests: objects by kind and name, a resource
// version bumped by every write, conflicts on a stale replace, label-selector lists, and the
// scale subresource. No controllers run: tests put the pods the Deployments would have.
#pragma once

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
    if (objects_[r.plural].erase(name) == 0) return NotFound(r, name);
    ++version_;
    return absl::OkStatus();
  }

  // ---- for tests ----
  // What another writer would do: stores `object` as is (a new resource version).
  void Put(const Resource& r, json object) { (void)Store(r, std::move(object)); }
  json* Find(const Resource& r, const std::string& name) {
    auto it = objects_[r.plural].find(name);
    return it == objects_[r.plural].end() ? nullptr : &it->second;
  }
  size_t Count(const Resource& r) { return objects_[r.plural].size(); }
  // Writes of these kinds (not gets and lists) since the last ClearCalls.
  std::vector<std::string> Writes() const {
    std::vector<std::string> out;
    for (const auto& c : calls) {
      if (!c.starts_with("get ") && !c.starts_with("list ")) out.push_back(c);
    }
    return out;
  }

  std::vector<std::string> calls;
  absl::Status list_error;  // what List answers when not OK (an API server that is away)
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
    objects_[r.plural][name] = object;
    return object;
  }

  std::map<std::string, std::map<std::string, json>> objects_;
  int64_t version_ = 0;
};

}  // namespace cortex::backends::kubernetes::testing
