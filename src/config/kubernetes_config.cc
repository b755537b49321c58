#include "config/kubernetes_config.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/string_view.h>

#include <set>

#include "common/status.h"
#include "config/api_config.h"

namespace cortex::config {

namespace {

using nlohmann::json;

constexpr const char* kKeys[] = {"cluster_name",          "namespace",
                                 "api_gateway",           "image",
                                 "image_operator",        "image_gateway",
                                 "image_predictor",       "image_pull_policy",
                                 "operator_service_type", "gateway_service_type",
                                 "gateway_replicas",      "operator_volume_size",
                                 "storage_class",         "node_groups",
                                 "on_demand_backup"};

bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

absl::Status Error(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

absl::StatusOr<std::string> ReadScalar(const YAML::Node& node, absl::string_view field) {
  if (!node.IsScalar()) return Error(field, "must be a string");
  return node.Scalar();
}

absl::StatusOr<std::string> ReadOneOf(const YAML::Node& node, absl::string_view field,
                                      const std::vector<std::string>& choices) {
  ASSIGN_OR_RETURN(std::string value, ReadScalar(node, field));
  for (const auto& c : choices) {
    if (value == c) return value;
  }
  return Error(field, absl::StrCat("\"", value, "\" is not one of ", absl::StrJoin(choices, ", ")));
}

absl::StatusOr<bool> ReadBool(const YAML::Node& node, absl::string_view field) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return Error(field, "must be true or false");
  }
  return value;
}

// An image reference: no spaces, no scheme, something before an optional tag.
absl::StatusOr<std::string> ReadImage(const YAML::Node& node, absl::string_view field) {
  ASSIGN_OR_RETURN(std::string value, ReadScalar(node, field));
  bool ok = !value.empty() && value.find("://") == std::string::npos;
  for (char c : value) ok = ok && !absl::ascii_isspace(static_cast<unsigned char>(c));
  if (!ok) return Error(field, absl::StrCat("\"", value, "\" is not a valid image"));
  return value;
}

absl::StatusOr<Toleration> ReadToleration(const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) return Error(field, "must be a map with key, value and effect");
  Toleration t;
  for (const auto& entry : node) {
    std::string key = entry.first.as<std::string>();
    std::string where = absl::StrCat(field, ".", key);
    if (key == "key") {
      ASSIGN_OR_RETURN(t.key, ReadScalar(entry.second, where));
      if (!IsLabelKey(t.key))
        return Error(where, absl::StrCat("\"", t.key, "\" is not a taint key"));
    } else if (key == "value") {
      ASSIGN_OR_RETURN(t.value, ReadScalar(entry.second, where));
      if (!IsLabelValue(*t.value)) {
        return Error(where, absl::StrCat("\"", *t.value, "\" is not a taint value"));
      }
    } else if (key == "effect") {
      ASSIGN_OR_RETURN(t.effect, ReadOneOf(entry.second, where,
                                           {"NoSchedule", "PreferNoSchedule", "NoExecute"}));
    } else {
      return Error(where, "is not a toleration field (expected key, value, effect)");
    }
  }
  if (t.key.empty()) return Error(field, "key is required");
  return t;
}

absl::StatusOr<NodeGroup> ReadNodeGroup(const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) return Error(field, "must be a map");
  NodeGroup group;
  for (const auto& entry : node) {
    std::string key = entry.first.as<std::string>();
    std::string where = absl::StrCat(field, ".", key);
    const YAML::Node& value = entry.second;
    if (key == "name") {
      ASSIGN_OR_RETURN(group.name, ReadScalar(value, where));
      if (!IsDnsLabel(group.name)) {
        return Error(where, absl::StrCat("\"", group.name,
                                         "\" must be lower-case letters, digits and dashes"));
      }
    } else if (key == "node_labels") {
      if (!value.IsMap() || value.size() == 0) {
        return Error(where, "must be a map of the labels the group's nodes carry");
      }
      for (const auto& label : value) {
        std::string k = label.first.as<std::string>();
        if (!IsLabelKey(k)) return Error(where, absl::StrCat("\"", k, "\" is not a label key"));
        ASSIGN_OR_RETURN(std::string v, ReadScalar(label.second, absl::StrCat(where, ".", k)));
        if (!IsLabelValue(v)) {
          return Error(absl::StrCat(where, ".", k),
                       absl::StrCat("\"", v, "\" is not a label value"));
        }
        group.node_labels[k] = v;
      }
    } else if (key == "spot") {
      ASSIGN_OR_RETURN(group.spot, ReadBool(value, where));
    } else if (key == "accelerator") {
      ASSIGN_OR_RETURN(group.accelerator,
                       ReadOneOf(value, where, {"none", "nvidia", "inferentia"}));
    } else if (key == "tolerations") {
      if (!value.IsSequence()) return Error(where, "must be a list");
      for (size_t i = 0; i < value.size(); ++i) {
        ASSIGN_OR_RETURN(Toleration t, ReadToleration(value[i], absl::StrCat(where, "[", i, "]")));
        group.tolerations.push_back(std::move(t));
      }
    } else {
      return Error(where,
                   "is not a node group field (expected name, node_labels, spot, accelerator, "
                   "tolerations)");
    }
  }
  if (group.name.empty()) return Error(field, "name is required");
  if (group.node_labels.empty()) return Error(field, "node_labels is required");
  return group;
}

json TolerationJson(const Toleration& t) {
  json out = {{"key", t.key}};
  if (!t.effect.empty()) out["effect"] = t.effect;
  if (t.value) out["value"] = *t.value;
  return out;
}

}  // namespace

bool IsDnsLabel(std::string_view name) {
  if (name.empty() || name.size() > 63 || !IsAlnum(name.front()) || !IsAlnum(name.back())) {
    return false;
  }
  for (char c : name) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}

bool IsLabelValue(std::string_view value) {
  if (value.empty()) return true;
  if (value.size() > 63 || !IsAlnum(value.front()) || !IsAlnum(value.back())) return false;
  for (char c : value) {
    if (!(IsAlnum(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

bool IsLabelKey(std::string_view key) {
  std::string_view name = key;
  if (size_t slash = key.find('/'); slash != std::string_view::npos) {
    std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    // A DNS subdomain: dot-separated labels, 253 at most.
    if (prefix.empty() || prefix.size() > 253) return false;
    size_t start = 0;
    while (start <= prefix.size()) {
      size_t dot = prefix.find('.', start);
      std::string_view part =
          prefix.substr(start, dot == std::string_view::npos ? dot : dot - start);
      if (!IsDnsLabel(part)) return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  return !name.empty() && IsLabelValue(name);
}

absl::Status CheckDnsLabel(std::string_view field, const std::string& name) {
  if (IsDnsLabel(name)) return absl::OkStatus();
  return Error(absl::string_view(field.data(), field.size()),
               absl::StrCat("\"", name,
                            "\" must be 1 to 63 lower-case letters, digits and dashes, starting "
                            "and ending with a letter or digit"));
}

bool KubernetesConfig::IsKey(std::string_view key) {
  for (const char* k : kKeys) {
    if (key == k) return true;
  }
  return false;
}

absl::Status KubernetesConfig::Set(const std::string& key, const YAML::Node& value) {
  if (key == "cluster_name" || key == "namespace") {
    ASSIGN_OR_RETURN(std::string name, ReadScalar(value, key));
    RETURN_IF_ERROR(CheckDnsLabel(key, name));
    (key == "cluster_name" ? cluster_name : namespace_name) = name;
  } else if (key == "api_gateway") {
    ASSIGN_OR_RETURN(api_gateway, ReadOneOf(value, key, {"public", "none"}));
  } else if (key == "image") {
    ASSIGN_OR_RETURN(image, ReadImage(value, key));
  } else if (key == "image_operator") {
    ASSIGN_OR_RETURN(image_operator, ReadImage(value, key));
  } else if (key == "image_gateway") {
    ASSIGN_OR_RETURN(image_gateway, ReadImage(value, key));
  } else if (key == "image_predictor") {
    ASSIGN_OR_RETURN(image_predictor, ReadImage(value, key));
  } else if (key == "image_pull_policy") {
    ASSIGN_OR_RETURN(image_pull_policy, ReadOneOf(value, key, {"Always", "IfNotPresent", "Never"}));
  } else if (key == "operator_service_type" || key == "gateway_service_type") {
    ASSIGN_OR_RETURN(std::string type,
                     ReadOneOf(value, key, {"LoadBalancer", "NodePort", "ClusterIP"}));
    (key == "operator_service_type" ? operator_service_type : gateway_service_type) = type;
  } else if (key == "gateway_replicas") {
    int replicas = 0;
    if (!value.IsScalar() || !YAML::convert<int>::decode(value, replicas) || replicas < 1 ||
        replicas > 100) {
      return Error(key, "must be an integer from 1 to 100");
    }
    gateway_replicas = replicas;
  } else if (key == "operator_volume_size") {
    ASSIGN_OR_RETURN(std::string size, ReadScalar(value, key));
    auto bytes = ParseMemBytes(size);
    if (!bytes.ok()) return Error(key, bytes.status().message());
    if (*bytes < (64 << 20)) return Error(key, "must be at least 64Mi");
    operator_volume_size = FormatMemBytes(*bytes);
  } else if (key == "storage_class") {
    ASSIGN_OR_RETURN(std::string name, ReadScalar(value, key));
    if (!IsLabelKey(name) || name.find('/') != std::string::npos) {  // a DNS subdomain
      return Error(key, absl::StrCat("\"", name, "\" is not a storage class name"));
    }
    storage_class = name;
  } else if (key == "node_groups") {
    node_groups.clear();
    if (value.IsNull()) return absl::OkStatus();
    if (!value.IsSequence()) return Error(key, "must be a list of node groups");
    for (size_t i = 0; i < value.size(); ++i) {
      ASSIGN_OR_RETURN(NodeGroup group, ReadNodeGroup(value[i], absl::StrCat(key, "[", i, "]")));
      node_groups.push_back(std::move(group));
    }
  } else if (key == "on_demand_backup") {
    ASSIGN_OR_RETURN(on_demand_backup, ReadBool(value, key));
  } else {
    return Error(key, "is not a Kubernetes cluster setting");
  }
  return absl::OkStatus();
}

absl::Status KubernetesConfig::Validate() const {
  std::set<std::string> names;
  bool any_spot = false;
  for (const auto& group : node_groups) {
    if (!names.insert(group.name).second) {
      return Error("node_groups", absl::StrCat("\"", group.name, "\" is named twice"));
    }
    any_spot = any_spot || group.spot;
  }
  if (!on_demand_backup && !any_spot) {
    return Error("on_demand_backup",
                 "false needs at least one node group with spot: true (otherwise nothing could "
                 "be placed)");
  }
  return absl::OkStatus();
}

json KubernetesConfig::ToJson() const {
  json groups = json::array();
  for (const auto& g : node_groups) {
    json tolerations = json::array();
    for (const auto& t : g.tolerations) tolerations.push_back(TolerationJson(t));
    groups.push_back({{"name", g.name},
                      {"node_labels", g.node_labels},
                      {"spot", g.spot},
                      {"accelerator", g.accelerator},
                      {"tolerations", tolerations}});
  }
  json out = {{"cluster_name", cluster_name},
              {"namespace", namespace_name},
              {"api_gateway", api_gateway},
              {"image", image},
              {"image_pull_policy", image_pull_policy},
              {"operator_service_type", operator_service_type},
              {"gateway_service_type", gateway_service_type},
              {"gateway_replicas", gateway_replicas},
              {"operator_volume_size", operator_volume_size},
              {"node_groups", groups},
              {"on_demand_backup", on_demand_backup}};
  if (image_operator) out["image_operator"] = *image_operator;
  if (image_gateway) out["image_gateway"] = *image_gateway;
  if (image_predictor) out["image_predictor"] = *image_predictor;
  if (storage_class) out["storage_class"] = *storage_class;
  return out;
}

absl::StatusOr<KubernetesConfig> KubernetesConfig::FromJson(const json& in) {
  if (!in.is_object()) return absl::InvalidArgumentError("kubernetes: not an object");
  KubernetesConfig config;
  // JSON is YAML: the same reader checks both.
  YAML::Node root = YAML::Load(in.dump());
  for (const auto& entry : root) {
    RETURN_IF_ERROR(config.Set(entry.first.as<std::string>(), entry.second));
  }
  RETURN_IF_ERROR(config.Validate());
  return config;
}

}  // namespace cortex::config
