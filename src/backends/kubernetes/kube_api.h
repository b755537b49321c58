// The Kubernetes API as the platform uses it: objects of a few kinds (in one namespace, or
// cluster-scoped), read, listed by label, created, replaced under optimistic concurrency,
// scaled, deleted and watched, and pods' logs. The backend and `cortex cluster up/down/info`
// use it. A port:
// the REST client over libcurl fills it in the cluster; FakeKubeApi (testing/) in tests.
//
// Errors: NotFound for a missing object; AlreadyExists for a create of an existing one; Aborted
// for a replace whose metadata.resourceVersion is stale (409 Conflict: re-read and retry);
// Unavailable for a transport failure or a 5xx (retry later). Thread-compatible (the REST client
// is thread-safe: a PodWatch watches from its own thread).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace cortex::backends::kubernetes {

// One kind's REST collection: <prefix>/namespaces/<ns>/<plural>, or <prefix>/<plural> for a
// cluster-scoped kind.
struct Resource {
  const char* prefix;  // "/api/v1" (the core group) or "/apis/<group>/<version>"
  const char* plural;
  const char* kind;
  bool namespaced = true;
};
inline constexpr Resource kDeployments{"/apis/apps/v1", "deployments", "Deployment"};
inline constexpr Resource kServices{"/api/v1", "services", "Service"};
inline constexpr Resource kPods{"/api/v1", "pods", "Pod"};
inline constexpr Resource kJobs{"/apis/batch/v1", "jobs", "Job"};
// What the installation adds (install_manifests.h).
inline constexpr Resource kNamespaces{"/api/v1", "namespaces", "Namespace", false};
inline constexpr Resource kServiceAccounts{"/api/v1", "serviceaccounts", "ServiceAccount"};
inline constexpr Resource kRoles{"/apis/rbac.authorization.k8s.io/v1", "roles", "Role"};
inline constexpr Resource kRoleBindings{"/apis/rbac.authorization.k8s.io/v1", "rolebindings",
                                        "RoleBinding"};
inline constexpr Resource kSecrets{"/api/v1", "secrets", "Secret"};
inline constexpr Resource kConfigMaps{"/api/v1", "configmaps", "ConfigMap"};
inline constexpr Resource kPersistentVolumeClaims{"/api/v1", "persistentvolumeclaims",
                                                  "PersistentVolumeClaim"};

// The resource of an object's `kind` (one of the above); nullptr for another kind.
const Resource* ResourceOfKind(std::string_view kind);

// One change a watch reports: ADDED, MODIFIED, DELETED or BOOKMARK, and the object (for a
// bookmark, only its metadata.resourceVersion).
struct WatchEvent {
  std::string type;
  nlohmann::json object;
};

class KubeApi {
 public:
  virtual ~KubeApi() = default;
  virtual absl::StatusOr<nlohmann::json> Get(const Resource& resource, const std::string& name) = 0;
  // The items whose labels match `label_selector` ("a=b,c=d"; empty: all).
  virtual absl::StatusOr<nlohmann::json> List(const Resource& resource,
                                              const std::string& label_selector) = 0;
  virtual absl::StatusOr<nlohmann::json> Create(const Resource& resource,
                                                const nlohmann::json& object) = 0;
  // PUT: `object` carries the metadata.resourceVersion it was read at.
  virtual absl::StatusOr<nlohmann::json> Replace(const Resource& resource,
                                                 const nlohmann::json& object) = 0;
  // The scale subresource: spec.replicas only (what the autoscaler changes).
  virtual absl::Status Scale(const Resource& resource, const std::string& name, int replicas) = 0;
  // Deletes the object and, in the background, what it owns (a Deployment's pods).
  virtual absl::Status Delete(const Resource& resource, const std::string& name) = 0;
  // The changes to the matching objects after `resource_version` (a List's
  // metadata.resourceVersion), in order, each passed to `on_event` as it arrives, until the
  // server ends the watch (after about `timeout_seconds`) or `on_event` returns false.
  // OutOfRange when the version is too old to watch from (410 Gone, also when it comes as an
  // ERROR event): list again and watch from the list's version.
  virtual absl::Status Watch(const Resource& resource, const std::string& label_selector,
                             const std::string& resource_version, int timeout_seconds,
                             const std::function<bool(const WatchEvent&)>& on_event) = 0;
  // Ends the Watch calls in progress soon (within about a second), with Cancelled; those that
  // start later run as usual. Safe to call from any thread: it is how a watcher that stops ends
  // its own blocked Watch (calling it until that Watch has returned, since one may be just
  // starting). Another watcher's Watch ends too, early: it resumes from its version. The default
  // does nothing, for an implementation whose Watch does not block.
  virtual void CancelWatches() {}
  // The log of a pod's container, every line led by its RFC 3339 timestamp and a space
  // (timestamps=true), from `since_time` (RFC 3339, whole seconds; empty: what the kubelet
  // keeps), at most `limit_bytes`.
  virtual absl::StatusOr<std::string> PodLog(const std::string& pod, const std::string& container,
                                             const std::string& since_time,
                                             int64_t limit_bytes) = 0;
};

}  // namespace cortex::backends::kubernetes
