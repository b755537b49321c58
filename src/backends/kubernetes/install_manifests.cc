#include "backends/kubernetes/install_manifests.h"

#include <absl/strings/str_cat.h>

#include "backends/kubernetes/manifests.h"
#include "common/util.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

constexpr const char* kOperatorName = "cortex-operator";
constexpr const char* kGatewayName = "cortex-gateway";
constexpr const char* kConfigMapName = "cortex-cluster-config";
constexpr const char* kConfigDir = "/etc/cortex/cluster";
constexpr const char* kOperatorDataDir = "/var/lib/cortex";
// The platform image's unprivileged user (Dockerfile).
constexpr int kPlatformUid = 1000;
// On the servers' pod templates: the servers read the configuration at start, so a new one
// rolls their pods.
constexpr const char* kConfigHashAnnotation = "cortex.dev/cluster-config";

json Metadata(const config::KubernetesConfig& k8s, const std::string& name,
              const std::string& component) {
  return {{"name", name},
          {"namespace", k8s.namespace_name},
          {"labels", PlatformLabels(k8s, component)}};
}

json Selector(const std::string& component) { return {{"app.kubernetes.io/name", component}}; }

json Probe(const std::string& path, const std::string& port) {
  return {{"httpGet", {{"path", path}, {"port", port}}},
          {"periodSeconds", 5},
          {"timeoutSeconds", 2},
          {"failureThreshold", 3}};
}

json SecurityContext() {
  return {{"runAsNonRoot", true},
          {"runAsUser", kPlatformUid},
          {"runAsGroup", kPlatformUid},
          {"fsGroup", kPlatformUid}};
}

json ContainerSecurity() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"capabilities", {{"drop", {"ALL"}}}}};
}

json ConfigVolume() {
  return {{"name", "cluster-config"}, {"configMap", {{"name", kConfigMapName}}}};
}

json TmpVolume() { return {{"name", "tmp"}, {"emptyDir", json::object()}}; }

json Mounts(bool data) {
  json mounts = {TokenMount(),
                 {{"name", "cluster-config"}, {"mountPath", kConfigDir}, {"readOnly", true}},
                 // The root filesystem is read-only.
                 {{"name", "tmp"}, {"mountPath", "/tmp"}}};
  if (data) mounts.push_back({{"name", "data"}, {"mountPath", kOperatorDataDir}});
  return mounts;
}

std::string ConfigFile() { return absl::StrCat(kConfigDir, "/cluster.json"); }

json Service(const config::KubernetesConfig& k8s, const std::string& name,
             const std::string& component, const std::string& type, json ports) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Metadata(k8s, name, component)},
          {"spec", {{"type", type}, {"selector", Selector(component)}, {"ports", ports}}}};
}

json OperatorDeployment(const config::KubernetesConfig& k8s, const std::string& config_hash) {
  json container = {{"name", "operator"},
                    {"image", k8s.OperatorImage()},
                    {"imagePullPolicy", k8s.image_pull_policy},
                    {"command", {"cortex"}},
                    {"args",
                     {"operator", "--data-dir", kOperatorDataDir, "--host", "0.0.0.0", "--port",
                      std::to_string(kServingPort), "--token-file", TokenFile(), "--api-gateway",
                      k8s.api_gateway, "--provider", "kubernetes", "--namespace",
                      k8s.namespace_name, "--cluster-config", ConfigFile()}},
                    {"ports", json::array({{{"name", "http"}, {"containerPort", kServingPort}}})},
                    {"readinessProbe", Probe("/healthz", "http")},
                    {"livenessProbe", Probe("/healthz", "http")},
                    {"resources", {{"requests", {{"cpu", "200m"}, {"memory", "256Mi"}}}}},
                    {"securityContext", ContainerSecurity()},
                    {"volumeMounts", Mounts(/*data=*/true)}};
  json pod = {
      {"serviceAccountName", kOperatorName},
      {"securityContext", SecurityContext()},
      {"containers", json::array({container})},
      {"volumes",
       {TokenVolume(),
        ConfigVolume(),
        TmpVolume(),
        {{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "cortex-operator-data"}}}}}}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", Metadata(k8s, kOperatorName, "operator")},
          {"spec",
           {{"replicas", 1},
            // One writer of the SQLite file on a ReadWriteOnce volume: the old pod goes first.
            {"strategy", {{"type", "Recreate"}}},
            {"selector", {{"matchLabels", Selector("operator")}}},
            {"template",
             {{"metadata",
               {{"labels", PlatformLabels(k8s, "operator")},
                {"annotations", {{kConfigHashAnnotation, config_hash}}}}},
              {"spec", pod}}}}}};
}

json GatewayDeployment(const config::KubernetesConfig& k8s, const std::string& config_hash) {
  json ports = json::array({{{"name", "load-balancer"}, {"containerPort", kLoadBalancerPort}}});
  if (k8s.api_gateway == "public") {
    ports.push_back({{"name", "api-gateway"}, {"containerPort", kServingPort}});
  }
  json container = {
      {"name", "gateway"},
      {"image", k8s.GatewayImage()},
      {"imagePullPolicy", k8s.image_pull_policy},
      {"command", {"cortex"}},
      {"args",
       {"gateway", "--host", "0.0.0.0", "--port", std::to_string(kServingPort), "--lb-port",
        std::to_string(kLoadBalancerPort), "--operator-url", OperatorServiceUrl(k8s),
        "--token-file", TokenFile(), "--cluster-config", ConfigFile()}},
      {"ports", ports},
      {"readinessProbe", Probe("/_cortex/healthz", "load-balancer")},
      {"livenessProbe", Probe("/_cortex/healthz", "load-balancer")},
      {"resources", {{"requests", {{"cpu", "500m"}, {"memory", "128Mi"}}}}},
      {"securityContext", ContainerSecurity()},
      {"volumeMounts", Mounts(/*data=*/false)}};
  json pod = {{"automountServiceAccountToken", false},
              {"securityContext", SecurityContext()},
              // Requests in flight finish before the pod goes (the API gateway's 29 s timeout).
              {"terminationGracePeriodSeconds", 35},
              {"containers", json::array({container})},
              {"volumes", {TokenVolume(), ConfigVolume(), TmpVolume()}}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", Metadata(k8s, kGatewayName, "gateway")},
          {"spec",
           {{"replicas", k8s.gateway_replicas},
            {"selector", {{"matchLabels", Selector("gateway")}}},
            {"template",
             {{"metadata",
               {{"labels", PlatformLabels(k8s, "gateway")},
                {"annotations", {{kConfigHashAnnotation, config_hash}}}}},
              {"spec", pod}}}}}};
}

}  // namespace

json OperatorRules() {
  json all = {"get", "list", "watch", "create", "update", "patch", "delete"};
  return json::array(
      {{{"apiGroups", {"apps"}}, {"resources", {"deployments"}}, {"verbs", all}},
       {{"apiGroups", {"apps"}},
        {"resources", {"deployments/scale"}},
        {"verbs", {"get", "update", "patch"}}},
       {{"apiGroups", {""}}, {"resources", {"services"}}, {"verbs", all}},
       {{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"get", "list", "watch"}}},
       {{"apiGroups", {""}}, {"resources", {"pods/log"}}, {"verbs", {"get"}}},
       {{"apiGroups", {"batch"}}, {"resources", {"jobs"}}, {"verbs", all}}});
}

std::vector<json> InstallObjects(const config::ClusterConfig& cluster, const std::string& token) {
  const config::KubernetesConfig& k8s = cluster.kubernetes;
  const std::string config_json = cluster.ToJson().dump(2);
  const std::string config_hash = Sha256Hex(config_json).substr(0, 16);
  std::vector<json> objects;
  objects.push_back(
      {{"apiVersion", "v1"},
       {"kind", "Namespace"},
       {"metadata", {{"name", k8s.namespace_name}, {"labels", PlatformLabels(k8s, "namespace")}}}});
  objects.push_back({{"apiVersion", "v1"},
                     {"kind", "ServiceAccount"},
                     {"metadata", Metadata(k8s, kOperatorName, "operator")},
                     {"automountServiceAccountToken", true}});
  objects.push_back({{"apiVersion", "rbac.authorization.k8s.io/v1"},
                     {"kind", "Role"},
                     {"metadata", Metadata(k8s, kOperatorName, "operator")},
                     {"rules", OperatorRules()}});
  objects.push_back(
      {{"apiVersion", "rbac.authorization.k8s.io/v1"},
       {"kind", "RoleBinding"},
       {"metadata", Metadata(k8s, kOperatorName, "operator")},
       {"roleRef",
        {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", kOperatorName}}},
       {"subjects",
        {{{"kind", "ServiceAccount"},
          {"name", kOperatorName},
          {"namespace", k8s.namespace_name}}}}});
  objects.push_back({{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", Metadata(k8s, kTokenSecret, "operator")},
                     {"type", "Opaque"},
                     {"stringData", {{"token", token}}}});
  objects.push_back({{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", Metadata(k8s, kConfigMapName, "operator")},
                     {"data", {{"cluster.json", config_json}}}});
  json pvc_spec = {{"accessModes", {"ReadWriteOnce"}},
                   {"resources", {{"requests", {{"storage", k8s.operator_volume_size}}}}}};
  if (k8s.storage_class) pvc_spec["storageClassName"] = *k8s.storage_class;
  objects.push_back({{"apiVersion", "v1"},
                     {"kind", "PersistentVolumeClaim"},
                     {"metadata", Metadata(k8s, "cortex-operator-data", "operator")},
                     {"spec", pvc_spec}});
  objects.push_back(OperatorDeployment(k8s, config_hash));
  objects.push_back(
      Service(k8s, kOperatorName, "operator", k8s.operator_service_type,
              json::array({{{"name", "http"}, {"port", kServingPort}, {"targetPort", "http"}}})));
  objects.push_back(GatewayDeployment(k8s, config_hash));
  json gateway_ports = json::array(
      {{{"name", "load-balancer"}, {"port", kLoadBalancerPort}, {"targetPort", "load-balancer"}}});
  if (k8s.api_gateway == "public") {
    gateway_ports.push_back(
        {{"name", "api-gateway"}, {"port", kServingPort}, {"targetPort", "api-gateway"}});
  }
  objects.push_back(Service(k8s, kGatewayName, "gateway", k8s.gateway_service_type, gateway_ports));
  return objects;
}

}  // namespace cortex::backends::kubernetes
