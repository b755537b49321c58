#include "backends/kubernetes/placement.h"

#include <absl/strings/str_cat.h>

#include <vector>

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

json Resources(const config::ComputeConfig& compute) {
  json requests = {{"cpu", config::FormatCpuMilli(compute.cpu_milli)}};
  json limits = json::object();
  if (compute.mem_bytes) {
    // Requested and enforced: a replica past it is OOMKilled ("error (out of memory)").
    requests["memory"] = config::FormatMemBytes(*compute.mem_bytes);
    limits["memory"] = requests["memory"];
  }
  // Extended resources: whole devices, requests equal to limits.
  if (compute.gpu > 0) {
    requests[kGpuResource] = std::to_string(compute.gpu);
    limits[kGpuResource] = std::to_string(compute.gpu);
  }
  if (compute.inf > 0) {
    requests[kInferentiaResource] = std::to_string(compute.inf);
    limits[kInferentiaResource] = std::to_string(compute.inf);
  }
  json out = {{"requests", requests}};
  if (!limits.empty()) out["limits"] = limits;
  return out;
}

// A node selector term that matches exactly the nodes of `group`.
json Term(const config::NodeGroup& group) {
  json expressions = json::array();
  for (const auto& [key, value] : group.node_labels) {
    expressions.push_back({{"key", key}, {"operator", "In"}, {"values", {value}}});
  }
  return {{"matchExpressions", expressions}};
}

json TolerationJson(const config::Toleration& t) {
  json out = {{"key", t.key}, {"operator", t.value ? "Equal" : "Exists"}};
  if (t.value) out["value"] = *t.value;
  if (!t.effect.empty()) out["effect"] = t.effect;
  return out;
}

}  // namespace

absl::StatusOr<Placement> PlaceWorkload(const config::ComputeConfig& compute,
                                        const config::KubernetesConfig& cluster) {
  Placement placement;
  placement.resources = Resources(compute);
  std::string accelerator = compute.gpu > 0 ? "nvidia" : compute.inf > 0 ? "inferentia" : "none";
  if (compute.gpu > 0) {
    placement.tolerations.push_back(
        {{"key", kGpuResource}, {"operator", "Exists"}, {"effect", "NoSchedule"}});
  }
  if (compute.inf > 0) {
    placement.tolerations.push_back(
        {{"key", kInferentiaResource}, {"operator", "Exists"}, {"effect", "NoSchedule"}});
  }
  if (cluster.node_groups.empty()) return placement;

  std::vector<const config::NodeGroup*> candidates;
  for (const auto& g : cluster.node_groups) {
    if (g.accelerator == accelerator) candidates.push_back(&g);
  }
  if (candidates.empty() && accelerator == "none") {
    for (const auto& g : cluster.node_groups) candidates.push_back(&g);
  }
  if (candidates.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "compute: ", compute.gpu > 0 ? "gpu" : "inf", ": no node group of the cluster has ",
        accelerator == "nvidia" ? "NVIDIA GPUs" : "Inferentia chips",
        " (add one with accelerator: ", accelerator, " to node_groups in cluster.yaml)"));
  }
  bool any_spot = false;
  for (const auto* g : candidates) any_spot = any_spot || g->spot;
  json required = json::array(), preferred = json::array();
  for (const auto* g : candidates) {
    if (any_spot && !g->spot && !cluster.on_demand_backup) continue;
    required.push_back(Term(*g));
    if (any_spot && g->spot) preferred.push_back({{"weight", 100}, {"preference", Term(*g)}});
    for (const auto& t : g->tolerations) {
      json toleration = TolerationJson(t);
      bool seen = false;
      for (const auto& have : placement.tolerations) seen = seen || have == toleration;
      if (!seen) placement.tolerations.push_back(toleration);
    }
  }
  json node_affinity = {
      {"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", required}}}};
  if (!preferred.empty()) {
    node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred;
  }
  placement.affinity = {{"nodeAffinity", node_affinity}};
  return placement;
}

}  // namespace cortex::backends::kubernetes
