// What a pod tells about the replica or worker it runs (spec §8's statuses from Kubernetes'
// pod status): ready from the Ready condition, out of memory from an OOMKilled container,
// compute unavailable from an Unschedulable pod, failed from a crash loop or a bad image. Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backends/backend.h"

namespace cortex::backends::kubernetes {

// `predictor_id`/`deployment_id`: the set's current version (the replica's `updated`).
ReplicaStatus PodReplica(const nlohmann::json& pod, const std::string& predictor_id,
                         const std::string& deployment_id);

// Why a pod is not running, in a line for the API's log ("" when nothing is wrong): the
// scheduler's message for an unschedulable pod, the container's waiting or termination reason.
std::string PodProblem(const nlohmann::json& pod);

}  // namespace cortex::backends::kubernetes
