#include "backends/kubernetes/installer.h"

#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>
#include <absl/time/clock.h>

#include <algorithm>

#include "backends/kubernetes/apply.h"
#include "backends/kubernetes/manifests.h"
#include "common/status.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

constexpr const char* kOperator = "cortex-operator";
constexpr const char* kGateway = "cortex-gateway";

std::string Name(const json& object) { return object["metadata"].value("name", ""); }

absl::StatusOr<const Resource*> ResourceOf(const json& object) {
  const Resource* resource = ResourceOfKind(object.value("kind", ""));
  if (resource == nullptr) {
    return absl::InternalError(
        absl::StrCat("no REST resource for kind ", object.value("kind", "")));
  }
  return resource;
}

// A Deployment's ready and wanted replicas (0/0 when it does not exist). Ready counts only the
// pods of its current template, once the controller has seen it (as `kubectl rollout status`):
// right after a replace the old pods are still ready.
std::pair<int, int> Readiness(const absl::StatusOr<json>& deployment) {
  if (!deployment.ok()) return {0, 0};
  const json status = deployment->value("status", json::object());
  const json meta = deployment->value("metadata", json::object());
  int wanted = deployment->value("spec", json::object()).value("replicas", 1);
  bool observed =
      status.value("observedGeneration", int64_t{0}) >= meta.value("generation", int64_t{0});
  int ready = std::min(status.value("readyReplicas", 0), status.value("updatedReplicas", 0));
  return {observed ? ready : 0, wanted};
}

// http://address:port of a LoadBalancer Service's port named `port_name`, once it has one.
std::string ExternalUrl(const absl::StatusOr<json>& service, const std::string& port_name) {
  const json spec = service.ok() ? service->value("spec", json::object()) : json::object();
  if (spec.value("type", "") != "LoadBalancer") return "";
  const json ingress = service->value("status", json::object())
                           .value("loadBalancer", json::object())
                           .value("ingress", json::array());
  if (ingress.empty()) return "";
  std::string host = ingress[0].value("ip", ingress[0].value("hostname", ""));
  if (host.empty()) return "";
  for (const auto& port : spec.value("ports", json::array())) {
    if (port.value("name", "") == port_name) {
      return absl::StrCat("http://", host, ":", port.value("port", 0));
    }
  }
  return "";
}

// Why a pod of the platform is not running, or "" when it is.
std::string PodProblem(const json& pod) {
  const json status = pod.value("status", json::object());
  for (const auto& container : status.value("containerStatuses", json::array())) {
    const json waiting = container.value("state", json::object()).value("waiting", json::object());
    if (waiting.contains("reason")) {
      return absl::StrCat(Name(pod), ": ", waiting.value("reason", ""),
                          waiting.contains("message") ? ": " : "", waiting.value("message", ""));
    }
  }
  for (const auto& condition : status.value("conditions", json::array())) {
    if (condition.value("type", "") == "PodScheduled" && condition.value("status", "") == "False") {
      return absl::StrCat(Name(pod), ": not scheduled: ", condition.value("message", ""));
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> InstalledToken(KubeApi& api) {
  ASSIGN_OR_RETURN(json secret, api.Get(kSecrets, kTokenSecret));
  // The API server answers `data` (base64); stringData is write-only, but a fake may keep it.
  if (secret.contains("data") && secret["data"].contains("token")) {
    std::string token;
    if (!absl::Base64Unescape(secret["data"]["token"].get<std::string>(), &token)) {
      return absl::DataLossError(absl::StrCat("the Secret ", kTokenSecret, " is not base64"));
    }
    return token;
  }
  if (secret.contains("stringData") && secret["stringData"].contains("token")) {
    return secret["stringData"]["token"].get<std::string>();
  }
  return absl::DataLossError(absl::StrCat("the Secret ", kTokenSecret, " holds no token"));
}

absl::Status Install(KubeApi& api, const std::vector<json>& objects,
                     const std::function<void(const std::string&)>& progress) {
  for (const json& object : objects) {
    ASSIGN_OR_RETURN(const Resource* resource, ResourceOf(object));
    std::string what = absl::StrCat(resource->kind, " ", Name(object));
    auto existing = api.Get(*resource, Name(object));
    if (resource == &kNamespaces && absl::IsPermissionDenied(existing.status())) {
      // Credentials for the namespace only: it must exist already (the next objects say if not).
      progress(absl::StrCat(what, " not readable with these credentials: assumed to exist"));
      continue;
    }
    if (!existing.ok() && !absl::IsNotFound(existing.status())) {
      return Annotate(existing.status(), "reading " + what);
    }
    bool kept_as_is = resource == &kNamespaces || resource == &kPersistentVolumeClaims;
    if (existing.ok() && kept_as_is) {
      progress(absl::StrCat(what, " exists"));
      continue;
    }
    std::vector<std::string> events;
    RETURN_IF_ERROR(ApplyObject(api, *resource, object, existing.ok() ? &*existing : nullptr,
                                /*scalable=*/resource == &kDeployments, events));
    if (events.empty()) events.push_back(absl::StrCat(what, " unchanged"));
    for (const auto& event : events) progress(event);
  }
  return absl::OkStatus();
}

json PlatformState::ToJson() const {
  return {{"installed", installed},
          {"operator",
           {{"ready", operator_ready},
            {"wanted", operator_wanted},
            {"url", operator_url},
            {"service_type", operator_service_type}}},
          {"gateway",
           {{"ready", gateway_ready},
            {"wanted", gateway_wanted},
            {"api_gateway_url", api_gateway_url},
            {"load_balancer_url", load_balancer_url}}},
          {"realtime_apis", realtime_apis},
          {"batch_jobs", batch_jobs},
          {"problems", problems}};
}

absl::StatusOr<PlatformState> ObservePlatform(KubeApi& api,
                                              const config::KubernetesConfig& cluster) {
  PlatformState state;
  auto operator_deployment = api.Get(kDeployments, kOperator);
  if (!operator_deployment.ok() && !absl::IsNotFound(operator_deployment.status())) {
    return operator_deployment.status();
  }
  state.installed = operator_deployment.ok();
  if (!state.installed) return state;
  std::tie(state.operator_ready, state.operator_wanted) = Readiness(operator_deployment);
  std::tie(state.gateway_ready, state.gateway_wanted) = Readiness(api.Get(kDeployments, kGateway));
  auto operator_service = api.Get(kServices, kOperator);
  if (operator_service.ok()) {
    state.operator_service_type =
        operator_service->value("spec", json::object()).value("type", "ClusterIP");
  }
  state.operator_url = ExternalUrl(operator_service, "http");
  auto gateway_service = api.Get(kServices, kGateway);
  state.api_gateway_url = ExternalUrl(gateway_service, "api-gateway");
  state.load_balancer_url = ExternalUrl(gateway_service, "load-balancer");

  std::string ours = ClusterSelector(cluster);
  ASSIGN_OR_RETURN(json apis, api.List(kDeployments, ours + ",apiKind=RealtimeAPI"));
  state.realtime_apis = static_cast<int>(apis.value("items", json::array()).size());
  ASSIGN_OR_RETURN(json jobs, api.List(kJobs, ours + ",apiKind=BatchAPI"));
  state.batch_jobs = static_cast<int>(jobs.value("items", json::array()).size());
  for (const char* component : {"operator", "gateway"}) {
    ASSIGN_OR_RETURN(json pods,
                     api.List(kPods, absl::StrCat(ours, ",app.kubernetes.io/name=", component)));
    for (const auto& pod : pods.value("items", json::array())) {
      if (std::string problem = PodProblem(pod); !problem.empty()) {
        state.problems.push_back(problem);
      }
    }
  }
  return state;
}

bool AnythingInstalled(KubeApi& api, const std::vector<json>& objects) {
  for (const json& object : objects) {
    auto resource = ResourceOf(object);
    if (!resource.ok() || *resource == &kNamespaces) continue;  // a namespace may be anyone's
    auto existing = api.Get(**resource, Name(object));
    if (!absl::IsNotFound(existing.status())) return true;  // there, or unknown: try removing
  }
  return false;
}

absl::Status Uninstall(KubeApi& api, const config::KubernetesConfig& cluster,
                       const std::vector<json>& objects,
                       const std::function<void(const std::string&)>& progress,
                       absl::Duration operator_grace) {
  auto remove = [&](const Resource& resource, const std::string& name) -> absl::Status {
    absl::Status st = api.Delete(resource, name);
    if (absl::IsNotFound(st)) return absl::OkStatus();
    if (!st.ok()) return Annotate(st, absl::StrCat("deleting ", resource.kind, " ", name));
    progress(absl::StrCat("deleted ", resource.kind, " ", name));
    return absl::OkStatus();
  };
  std::string ours = ClusterSelector(cluster);
  // The operator first, and until its pods are gone: while it runs it would make the APIs' objects
  // again as fast as they are deleted.
  RETURN_IF_ERROR(remove(kDeployments, kOperator));
  absl::Time deadline = absl::Now() + operator_grace;
  for (bool said = false;; said = true) {
    ASSIGN_OR_RETURN(json pods, api.List(kPods, ours + ",app.kubernetes.io/name=operator"));
    if (pods.value("items", json::array()).empty()) break;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the operator's pod is still running after ", absl::FormatDuration(operator_grace),
          ": its APIs were not deleted; run cluster down again"));
    }
    if (!said) progress("waiting for the operator's pod to stop");
    absl::SleepFor(absl::Seconds(1));
  }
  for (const Resource* resource : {&kJobs, &kDeployments, &kServices}) {
    const char* component = resource == &kJobs ? "batch-worker" : "api";
    ASSIGN_OR_RETURN(
        json items, api.List(*resource, absl::StrCat(ours, ",app.kubernetes.io/name=", component)));
    for (const auto& item : items.value("items", json::array())) {
      RETURN_IF_ERROR(remove(*resource, Name(item)));
    }
  }
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
    ASSIGN_OR_RETURN(const Resource* resource, ResourceOf(*it));
    if (resource == &kNamespaces) {
      // Only a namespace the installation made: one that was there before holds other things.
      auto existing = api.Get(kNamespaces, Name(*it));
      if (absl::IsNotFound(existing.status())) continue;
      if (!existing.ok()) {
        progress(absl::StrCat("Namespace ", Name(*it), " kept: ", existing.status().message()));
        continue;
      }
      const json labels =
          existing->value("metadata", json::object()).value("labels", json::object());
      if (labels.value("app.kubernetes.io/managed-by", "") != "cortex") {
        progress(absl::StrCat("Namespace ", Name(*it), " kept: cortex did not create it"));
        continue;
      }
    }
    RETURN_IF_ERROR(remove(*resource, Name(*it)));
  }
  return absl::OkStatus();
}

}  // namespace cortex::backends::kubernetes
