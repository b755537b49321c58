#include "backends/kubernetes/apply.h"

#include <absl/strings/str_cat.h>

#include "common/status.h"
#include "common/util.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

constexpr int kConflictRetries = 3;

std::string Name(const json& object) { return object["metadata"].value("name", ""); }

std::string HashOf(const json& object) {
  const json annotations = object["metadata"].value("annotations", json::object());
  return annotations.value(kSpecHashAnnotation, "");
}

}  // namespace

std::string SpecHash(json object) {
  if (object.contains("spec")) object["spec"].erase("replicas");
  return Sha256Hex(object.dump()).substr(0, 32);
}

absl::Status ApplyObject(KubeApi& api, const Resource& resource, json desired, const json* existing,
                         bool scalable, std::vector<std::string>& events) {
  std::string hash = SpecHash(desired);
  desired["metadata"]["annotations"][kSpecHashAnnotation] = hash;
  std::string what = absl::StrCat(resource.kind, " ", Name(desired));
  json current;
  if (existing == nullptr) {
    auto created = api.Create(resource, desired);
    if (created.ok()) {
      events.push_back("created " + what);
      return absl::OkStatus();
    }
    if (!absl::IsAlreadyExists(created.status())) {
      return Annotate(created.status(), "creating " + what);
    }
    ASSIGN_OR_RETURN(current, api.Get(resource, Name(desired)));  // made since the list
  } else {
    current = *existing;
  }
  for (int attempt = 0; HashOf(current) != hash; ++attempt) {
    json replacement = desired;
    replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
    if (resource.plural == kServices.plural) {  // immutable once allocated
      for (const char* field : {"clusterIP", "clusterIPs"}) {
        if (current["spec"].contains(field)) replacement["spec"][field] = current["spec"][field];
      }
    }
    auto replaced = api.Replace(resource, replacement);
    if (replaced.ok()) {
      events.push_back("updated " + what);
      return absl::OkStatus();
    }
    if (!absl::IsAborted(replaced.status()) || attempt + 1 >= kConflictRetries) {
      return Annotate(replaced.status(), "updating " + what);
    }
    ASSIGN_OR_RETURN(current, api.Get(resource, Name(desired)));  // someone else wrote it
  }
  if (scalable) {
    int want = desired["spec"].value("replicas", 1);
    if (current["spec"].value("replicas", 1) != want) {
      RETURN_IF_ERROR(api.Scale(resource, Name(desired), want));
      events.push_back(absl::StrCat("scaled ", what, " to ", want));
    }
  }
  return absl::OkStatus();
}

}  // namespace cortex::backends::kubernetes
