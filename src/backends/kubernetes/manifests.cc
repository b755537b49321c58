#include "backends/kubernetes/manifests.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <cstdint>
#include <limits>

#include "backends/kubernetes/placement.h"
#include "common/status.h"

namespace cortex::backends::kubernetes {

namespace {

using nlohmann::json;

// "25%" stays a string; "1" becomes the integer 1 (IntOrString).
json IntOrString(const std::string& text) {
  int value = 0;
  if (absl::SimpleAtoi(text, &value)) return value;
  return text;
}

// An annotation value: strings as they are, numbers as Go's strconv would write them.
std::string AnnotationValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return absl::StrCat(value.get<double>());  // 8, not 8.0
  return value.dump();
}

// Spec §9: the Deployment's annotations carry the parallelism, the endpoint, api_gateway and
// every autoscaling field but init_replicas.
json ApiAnnotations(const config::ApiConfig& api) {
  json spec = api.ToJson();
  json annotations = {
      {"processes_per_replica", std::to_string(api.predictor->processes_per_replica)},
      {"threads_per_process", std::to_string(api.predictor->threads_per_process)},
      {"endpoint", api.networking.endpoint},
      {"api_gateway", api.networking.api_gateway}};
  const json autoscaling = spec.value("autoscaling", json::object());
  for (const auto& [key, value] : autoscaling.items()) {
    if (key != "init_replicas") annotations[key] = AnnotationValue(value);
  }
  return annotations;
}

json Env(const config::ApiConfig& api, const config::KubernetesConfig& cluster) {
  json env = json::array();
  for (const auto& [key, value] : api.predictor->env) {
    env.push_back({{"name", key}, {"value", value}});
  }
  // Chaining (docs/predictor.md): other APIs through the gateway's in-cluster Service.
  std::string gateway = absl::StrCat("http://cortex-gateway.", cluster.namespace_name, ".svc:");
  env.push_back(
      {{"name", "CORTEX_LOAD_BALANCER_URL"}, {"value", absl::StrCat(gateway, kLoadBalancerPort)}});
  if (cluster.api_gateway == "public") {
    env.push_back(
        {{"name", "CORTEX_API_GATEWAY_URL"}, {"value", absl::StrCat(gateway, kServingPort)}});
  }
  for (const char* name : {"POD_NAME", "POD_NAMESPACE"}) {
    std::string field = std::string(name) == "POD_NAME" ? "metadata.name" : "metadata.namespace";
    env.push_back({{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", field}}}}}});
  }
  return env;
}

json Volumes() {
  return json::array(
      {{{"name", "cortex-data"}, {"emptyDir", json::object()}},
       // Shared memory for the workers (PyTorch's data loaders, ONNX Runtime's arenas).
       {{"name", "dshm"}, {"emptyDir", {{"medium", "Memory"}}}},
       TokenVolume()});
}

json VolumeMounts() {
  return json::array({{{"name", "cortex-data"}, {"mountPath", kDataDir}},
                      {{"name", "dshm"}, {"mountPath", "/dev/shm"}},
                      TokenMount()});
}

// The pod spec both workload kinds share: one container of `image` running `args`.
json PodSpec(const config::ApiConfig& api, const Placement& placement,
             const config::KubernetesConfig& cluster, const std::string& container, json args) {
  json c = {{"name", container},
            {"image", PodImage(api, cluster)},
            {"imagePullPolicy", cluster.image_pull_policy},
            {"command", {"cortex"}},
            {"args", std::move(args)},
            {"env", Env(api, cluster)},
            {"resources", placement.resources},
            {"volumeMounts", VolumeMounts()}};
  json pod = {{"containers", json::array({c})},
              // User code does not talk to the Kubernetes API.
              {"automountServiceAccountToken", false},
              {"volumes", Volumes()}};
  if (!placement.affinity.is_null()) pod["affinity"] = placement.affinity;
  if (!placement.tolerations.empty()) pod["tolerations"] = placement.tolerations;
  return pod;
}

}  // namespace

json TokenVolume() {
  return {{"name", "operator-token"},
          {"secret", {{"secretName", kTokenSecret}, {"defaultMode", 0440}}}};
}

json TokenMount() {
  return {{"name", "operator-token"}, {"mountPath", kTokenDir}, {"readOnly", true}};
}

std::string TokenFile() { return absl::StrCat(kTokenDir, "/token"); }

std::string OperatorServiceUrl(const config::KubernetesConfig& cluster) {
  return absl::StrCat("http://cortex-operator.", cluster.namespace_name, ".svc:", kServingPort);
}

json PlatformLabels(const config::KubernetesConfig& cluster, const std::string& component) {
  return {{"app.kubernetes.io/name", component},
          {"app.kubernetes.io/part-of", "cortex"},
          {"app.kubernetes.io/managed-by", "cortex"},
          {"cortex.dev/cluster", cluster.cluster_name}};
}

std::string ClusterSelector(const config::KubernetesConfig& cluster) {
  return absl::StrCat("app.kubernetes.io/managed-by=cortex,cortex.dev/cluster=",
                      cluster.cluster_name);
}

std::string PodImage(const config::ApiConfig& api, const config::KubernetesConfig& cluster) {
  const std::string& image = api.predictor->image;
  return config::IsCortexDefaultImage(image) ? cluster.PredictorImage() : image;
}

absl::StatusOr<std::vector<json>> RealtimeApiObjects(const ApiVersion& version,
                                                     const config::KubernetesConfig& cluster) {
  const config::ApiConfig& api = *version.api;
  if (api.kind != config::Kind::kRealtimeAPI || !api.predictor) {
    return absl::InvalidArgumentError(absl::StrCat(api.name, " is not a RealtimeAPI"));
  }
  ASSIGN_OR_RETURN(Placement placement, PlaceWorkload(api.compute, cluster));
  std::string name = absl::StrCat("api-", api.name);
  json selector = {{"apiName", api.name}};
  json pod_labels = {{"apiName", api.name},
                     {"apiKind", "RealtimeAPI"},
                     {"predictorID", version.predictor_id},
                     {"deploymentID", version.deployment_id}};
  json labels = pod_labels;
  labels["apiID"] = version.api_id;
  labels["specID"] = version.spec_id;
  labels.update(PlatformLabels(cluster, "api"));

  json args = {"replica-pod",
               "--operator",
               OperatorServiceUrl(cluster),
               "--token-file",
               TokenFile(),
               "--api",
               api.name,
               "--predictor-id",
               version.predictor_id,
               "--host",
               "0.0.0.0",
               "--port",
               std::to_string(kServingPort),
               "--data-dir",
               kDataDir};
  json pod = PodSpec(api, placement, cluster, "api", std::move(args));
  json& container = pod["containers"][0];
  container["ports"] = json::array({{{"name", "http"}, {"containerPort", kServingPort}}});
  // The front answers 200 on /_cortex/ready once a worker slot is up (503 while the predictor
  // loads, and while it drains).
  container["readinessProbe"] = {{"httpGet", {{"path", "/_cortex/ready"}, {"port", "http"}}},
                                 {"periodSeconds", 2},
                                 {"timeoutSeconds", 1},
                                 {"failureThreshold", 2}};
  // A stopping front finishes what it holds: the longest an API gateway request may take (29 s)
  // and some.
  pod["terminationGracePeriodSeconds"] = 60;

  json deployment = {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata",
                      {{"name", name},
                       {"namespace", cluster.namespace_name},
                       {"labels", labels},
                       {"annotations", ApiAnnotations(api)}}},
                     {"spec",
                      {{"replicas", version.replicas},
                       {"selector", {{"matchLabels", selector}}},
                       {"strategy",
                        {{"type", "RollingUpdate"},
                         {"rollingUpdate",
                          {{"maxSurge", IntOrString(api.update_strategy.max_surge)},
                           {"maxUnavailable", IntOrString(api.update_strategy.max_unavailable)}}}}},
                       {"template", {{"metadata", {{"labels", pod_labels}}}, {"spec", pod}}}}}};
  json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata",
       {{"name", name},
        {"namespace", cluster.namespace_name},
        {"labels", labels},
        {"annotations", {{"endpoint", api.networking.endpoint}}}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"selector", selector},
        {"ports",
         json::array({{{"name", "http"}, {"port", kServingPort}, {"targetPort", "http"}}})}}}};
  return std::vector<json>{deployment, service};
}

absl::StatusOr<json> BatchJobObject(const BatchJob& job, const config::KubernetesConfig& cluster) {
  const config::ApiConfig& api = *job.api;
  if (api.kind != config::Kind::kBatchAPI || !api.predictor) {
    return absl::InvalidArgumentError(absl::StrCat(api.name, " is not a BatchAPI"));
  }
  ASSIGN_OR_RETURN(Placement placement, PlaceWorkload(api.compute, cluster));
  json pod_labels = {{"apiName", api.name}, {"apiKind", "BatchAPI"}, {"jobID", job.job_id}};
  json labels = pod_labels;
  labels["apiID"] = job.api_id;
  labels.update(PlatformLabels(cluster, "batch-worker"));
  json args = {"worker-pod",   "--operator",  OperatorServiceUrl(cluster),
               "--token-file", TokenFile(),   "--api",
               api.name,       "--job",       job.job_id,
               "--worker",     "$(POD_NAME)", "--data-dir",
               kDataDir};
  json pod = PodSpec(api, placement, cluster, "worker", std::move(args));
  // A failed worker is not restarted in place: the Job starts another while its failures are
  // within backoffLimit; the operator re-queues the failed worker's batch (lease expiry).
  pod["restartPolicy"] = "Never";
  // max_failures workers may fail; the Job fails past backoffLimit failures.
  int backoff_limit =
      job.max_failures > 0 ? job.max_failures - 1 : std::numeric_limits<int32_t>::max();
  return json{{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata",
               {{"name", absl::StrCat(api.name, "-", job.job_id)},
                {"namespace", cluster.namespace_name},
                {"labels", labels}}},
              {"spec",
               {{"parallelism", job.workers},
                {"backoffLimit", backoff_limit},
                // Kept an hour for `cortex logs`, then collected (the operator keeps the job's
                // record and log).
                {"ttlSecondsAfterFinished", 3600},
                {"template", {{"metadata", {{"labels", pod_labels}}}, {"spec", pod}}}}}};
}

}  // namespace cortex::backends::kubernetes
