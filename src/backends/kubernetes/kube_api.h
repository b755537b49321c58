// The Kubernetes API as the Kubernetes backend uses it: namespaced objects of a few kinds, read,
// listed by label, created, replaced under optimistic concurrency, scaled and deleted. A port:
// the REST client over libcurl fills it in the cluster; FakeKubeApi (testing/) in tests.
//
// Errors: NotFound for a missing object; AlreadyExists for a create of an existing one; Aborted
// for a replace whose metadata.resourceVersion is stale (409 Conflict: re-read and retry);
// Unavailable for a transport failure or a 5xx (retry later). Thread-compatible.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string>

namespace cortex::backends::kubernetes {

// One kind's REST collection: <prefix>/namespaces/<ns>/<plural>.
struct Resource {
  const char* prefix;  // "/api/v1" (the core group) or "/apis/<group>/<version>"
  const char* plural;
  const char* kind;
};
inline constexpr Resource kDeployments{"/apis/apps/v1", "deployments", "Deployment"};
inline constexpr Resource kServices{"/api/v1", "services", "Service"};
inline constexpr Resource kPods{"/api/v1", "pods", "Pod"};
inline constexpr Resource kJobs{"/apis/batch/v1", "jobs", "Job"};

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
};

}  // namespace cortex::backends::kubernetes
