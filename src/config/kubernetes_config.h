// The Kubernetes provider's part of cluster.yaml (spec §16, adapted to any existing cluster; see
// docs/kubernetes.md): where the platform is installed, which images it runs, and the node groups
// workloads are placed on (spot or on-demand, GPU or Inferentia). Every field has a default; the
// local provider refuses them. Pure; thread-compatible.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cortex::config {

// A taint a node group's nodes carry, which the workloads placed there tolerate.
struct Toleration {
  std::string key;
  std::optional<std::string> value;  // none: any value (operator Exists)
  std::string effect;                // NoSchedule | PreferNoSchedule | NoExecute | "" (all)
};

// Nodes the cluster already has, told apart by labels.
struct NodeGroup {
  std::string name;
  std::map<std::string, std::string> node_labels;  // every node of the group has them all
  bool spot = false;
  std::string accelerator = "none";  // none | nvidia (nvidia.com/gpu) | inferentia (neuron)
  std::vector<Toleration> tolerations;
};

struct KubernetesConfig {
  std::string cluster_name = "cortex";
  std::string namespace_name = "cortex";
  std::string api_gateway = "public";  // public | none: the API gateway listener is not exposed
  // The platform image: the operator, the gateway, batch workers and every API without an image
  // of its own (predictor.image left at Cortex's default) run it.
  std::string image = "cortex:0.24.0";
  std::optional<std::string> image_operator, image_gateway, image_predictor;
  std::string image_pull_policy = "IfNotPresent";      // Always | IfNotPresent | Never
  std::string operator_service_type = "LoadBalancer";  // LoadBalancer | NodePort | ClusterIP
  std::string gateway_service_type = "LoadBalancer";
  int gateway_replicas = 1;
  std::string operator_volume_size = "1Gi";  // the operator's PersistentVolumeClaim (SQLite)
  std::optional<std::string> storage_class;
  std::vector<NodeGroup> node_groups;  // none: workloads go wherever the scheduler puts them
  // With spot node groups: on-demand groups stay allowed (spot preferred) when true; only spot
  // groups are allowed when false.
  bool on_demand_backup = true;

  const std::string& OperatorImage() const { return image_operator ? *image_operator : image; }
  const std::string& GatewayImage() const { return image_gateway ? *image_gateway : image; }
  const std::string& PredictorImage() const { return image_predictor ? *image_predictor : image; }

  // Whether `key` is one of this section's top-level cluster.yaml keys.
  static bool IsKey(std::string_view key);
  // Reads one top-level key of cluster.yaml (IsKey(key) holds). Errors name the field.
  absl::Status Set(const std::string& key, const YAML::Node& value);
  // Checks that span fields (node group names unique, ...), after every Set.
  absl::Status Validate() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<KubernetesConfig> FromJson(const nlohmann::json& json);
};

// Kubernetes name rules, shared by the config and the manifests.
bool IsDnsLabel(std::string_view name);     // RFC 1123 label: [a-z0-9-], 1..63, alnum ends
bool IsLabelKey(std::string_view key);      // [prefix/]name, as metadata.labels keys
bool IsLabelValue(std::string_view value);  // 0..63 of [A-Za-z0-9._-], alnum ends
// `field: "name" must be ...` when `name` is not a DNS label (namespace, cluster_name,
// --namespace).
absl::Status CheckDnsLabel(std::string_view field, const std::string& name);

}  // namespace cortex::config
