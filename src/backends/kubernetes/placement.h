// Where a workload's pods may run and what they ask for (cluster.yaml node groups, spec §16;
// docs/kubernetes.md "Placement"): the pod spec's resources, node affinity and tolerations for
// one API's compute. Pure; thread-compatible.
//
// - GPU workloads (compute.gpu) may run on `accelerator: nvidia` groups, Inferentia ones
//   (compute.inf) on `accelerator: inferentia` groups, the rest on `accelerator: none` groups (on
//   any group when there is none of those). They tolerate their device's taint and the groups'.
// - With spot groups among those, spot nodes are preferred (preferred node affinity); with
//   `on_demand_backup: false` only the spot ones among them are
//   allowed.
// - Without node groups, nothing is constrained but the device taints.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>

#include "config/api_config.h"
#include "config/kubernetes_config.h"

namespace cortex::backends::kubernetes {

inline constexpr const char* kGpuResource = "nvidia.com/gpu";
inline constexpr const char* kInferentiaResource = "aws.amazon.com/neuron";

struct Placement {
  nlohmann::json resources;  // {requests, limits}
  nlohmann::json affinity;   // null: none
  nlohmann::json tolerations = nlohmann::json::array();
};

// Fails when the cluster's node groups have none that can run `compute` (e.g. a GPU API and no
// nvidia group): "compute: gpu: ...".
absl::StatusOr<Placement> PlaceWorkload(const config::ComputeConfig& compute,
                                        const config::KubernetesConfig& cluster);

}  // namespace cortex::backends::kubernetes
