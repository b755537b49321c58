// Making one object in the cluster match its rendered form, idempotently: created when missing,
// replaced when the hash of its rendered spec (an annotation, replicas left out) differs, and
// otherwise left alone or, for a scalable kind, only scaled through the scale subresource. A
// replace that loses a race (409) re-reads the object and tries again. The backend applies the
// APIs' objects this way, and `cortex cluster up` the installation's.
#pragma once

#include <absl/status/status.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/kubernetes/kube_api.h"

namespace cortex::backends::kubernetes {

inline constexpr const char* kSpecHashAnnotation = "cortex.dev/spec-hash";

// `existing` is the object as last listed (nullptr: not seen). Appends what it did ("created
// Deployment api-x", "updated ...", "scaled ... to 3") to `events`.
absl::Status ApplyObject(KubeApi& api, const Resource& resource, nlohmann::json desired,
                         const nlohmann::json* existing, bool scalable,
                         std::vector<std::string>& events);

// The hash ApplyObject compares: of the object without spec.replicas.
std::string SpecHash(nlohmann::json object);

}  // namespace cortex::backends::kubernetes
