// The rendered objects, against golden files (testdata/*.yaml; CORTEX_UPDATE_GOLDEN=1 rewrites
// them) and against the rules they must follow. tests/kubernetes/ validates the same files and
// the CLI's output against the official Kubernetes schemas.
#include "backends/kubernetes/manifests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "backends/kubernetes/install_manifests.h"
#include "backends/kubernetes/yaml_stream.h"
#include "config/cluster_config.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

config::ClusterConfig Cluster(const std::string& yaml) {
  auto parsed = config::ClusterConfig::FromYaml(yaml, "kubernetes");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : config::ClusterConfig();
}

config::ApiConfig Api(const std::string& yaml) {
  config::ParseOptions options;
  options.provider = "kubernetes";
  auto apis = config::ParseApiConfigs(yaml, options);
  EXPECT_TRUE(apis.ok()) << apis.status();
  return apis.ok() ? apis->at(0) : config::ApiConfig();
}

constexpr const char* kSpotGroups = R"(
node_groups:
  - name: cpu-spot
    node_labels: {eks.amazonaws.com/capacityType: SPOT}
    spot: true
    tolerations: [{key: spot, value: "true", effect: NoSchedule}]
  - name: cpu-on-demand
    node_labels: {eks.amazonaws.com/capacityType: ON_DEMAND}
  - name: gpu
    node_labels: {node.kubernetes.io/instance-type: g4dn.xlarge}
    accelerator: nvidia
  - name: inf
    node_labels: {node.kubernetes.io/instance-type: inf1.xlarge}
    accelerator: inferentia
)";

constexpr const char* kIris = R"(
- name: iris
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    processes_per_replica: 2
    threads_per_process: 4
    env: {MODEL_BUCKET: s3://bucket/iris}
  compute: {cpu: "1", mem: 2Gi}
  autoscaling: {min_replicas: 2, max_replicas: 10}
  update_strategy: {max_surge: 1, max_unavailable: 0}
)";

std::vector<json> Realtime(const config::ApiConfig& api, const config::ClusterConfig& cluster,
                           int replicas = 2) {
  ApiVersion version{&api, "api-id-1", "spec-id-1", "predictor-id-1", "deploy-id1", replicas};
  auto objects = RealtimeApiObjects(version, cluster.kubernetes);
  EXPECT_TRUE(objects.ok()) << objects.status();
  return objects.ok() ? *objects : std::vector<json>{};
}

json Batch(const config::ApiConfig& api, const config::ClusterConfig& cluster, int workers,
           int max_failures) {
  BatchJob job{&api, "api-id-2", "69e2f1a0c3d4b5e6", workers, max_failures};
  auto object = BatchJobObject(job, cluster.kubernetes);
  EXPECT_TRUE(object.ok()) << object.status();
  return object.ok() ? *object : json();
}

void ExpectGolden(const std::string& name, const std::vector<json>& objects) {
  std::string path = std::string(CORTEX_K8S_TESTDATA) + "/" + name + ".yaml";
  std::string text = ToYamlStream(objects);
  if (std::getenv("CORTEX_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path << " is missing: run with CORTEX_UPDATE_GOLDEN=1";
  std::stringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(text, golden.str()) << path << " differs (CORTEX_UPDATE_GOLDEN=1 rewrites it)";
}

json Container(const json& workload) {
  return workload["spec"]["template"]["spec"]["containers"][0];
}

TEST(Manifests, ARealtimeApiIsADeploymentAndAService) {
  config::ApiConfig api = Api(kIris);
  std::vector<json> objects = Realtime(api, Cluster(""));
  ExpectGolden("realtime-cpu", objects);
  ASSERT_EQ(objects.size(), 2u);
  const json& deployment = objects[0];
  EXPECT_EQ(deployment["kind"], "Deployment");
  EXPECT_EQ(deployment["metadata"]["name"], "api-iris");
  EXPECT_EQ(deployment["metadata"]["namespace"], "cortex");
  EXPECT_EQ(deployment["spec"]["replicas"], 2);
  // Spec §9: the labels and the annotations.
  const json& labels = deployment["metadata"]["labels"];
  EXPECT_EQ(labels["apiName"], "iris");
  EXPECT_EQ(labels["apiKind"], "RealtimeAPI");
  EXPECT_EQ(labels["predictorID"], "predictor-id-1");
  EXPECT_EQ(labels["deploymentID"], "deploy-id1");
  const json& annotations = deployment["metadata"]["annotations"];
  EXPECT_EQ(annotations["processes_per_replica"], "2");
  EXPECT_EQ(annotations["threads_per_process"], "4");
  EXPECT_EQ(annotations["endpoint"], "/iris");
  EXPECT_EQ(annotations["min_replicas"], "2");
  EXPECT_EQ(annotations["target_replica_concurrency"], "8");
  EXPECT_FALSE(annotations.contains("init_replicas"));
  for (const auto& [key, value] : annotations.items()) EXPECT_TRUE(value.is_string()) << key;
  // The selector never changes across versions (it is immutable); the template's labels do.
  EXPECT_EQ(deployment["spec"]["selector"]["matchLabels"], (json{{"apiName", "iris"}}));
  // update_strategy as the rolling update, integers as integers.
  EXPECT_EQ(deployment["spec"]["strategy"]["rollingUpdate"],
            (json{{"maxSurge", 1}, {"maxUnavailable", 0}}));
  json container = Container(deployment);
  EXPECT_EQ(container["image"], "cortex:0.24.0");  // the platform's, for Cortex's default image
  EXPECT_EQ(container["resources"]["requests"], (json{{"cpu", "1"}, {"memory", "2Gi"}}));
  EXPECT_EQ(container["resources"]["limits"], (json{{"memory", "2Gi"}}));
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"], "/_cortex/ready");
  EXPECT_EQ(container["env"][0], (json{{"name", "MODEL_BUCKET"}, {"value", "s3://bucket/iris"}}));
  EXPECT_EQ(container["args"][0], "replica-pod");
  EXPECT_THAT(container["args"].get<std::vector<std::string>>(),
              ::testing::IsSupersetOf({"--predictor-id", "predictor-id-1", "--api", "iris"}));
  EXPECT_THAT(container["env"].dump(), HasSubstr("\"http://cortex-gateway.cortex.svc:8889\""));
  const json& service = objects[1];
  EXPECT_EQ(service["kind"], "Service");
  EXPECT_EQ(service["spec"]["selector"], (json{{"apiName", "iris"}}));
  EXPECT_EQ(service["spec"]["ports"][0]["port"], kServingPort);
}

TEST(Manifests, SpotGpuAndInferentiaApisArePlacedOnTheirNodeGroups) {
  config::ClusterConfig cluster = Cluster(kSpotGroups);
  std::vector<json> all;
  config::ApiConfig cpu = Api(kIris);
  for (const json& o : Realtime(cpu, cluster)) all.push_back(o);
  config::ApiConfig gpu = Api(R"(
- name: detector
  kind: RealtimeAPI
  predictor: {type: onnx, path: predictor.py, model_path: s3://models/detector}
  compute: {cpu: 3, gpu: 1, mem: 12Gi}
)");
  std::vector<json> gpu_objects = Realtime(gpu, cluster, 1);
  for (const json& o : gpu_objects) all.push_back(o);
  config::ApiConfig inf = Api(R"(
- name: translator
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {inf: 1, mem: 4Gi}
)");
  std::vector<json> inf_objects = Realtime(inf, cluster, 1);
  for (const json& o : inf_objects) all.push_back(o);
  ExpectGolden("realtime-placed", all);

  json spot_pod = all[0]["spec"]["template"]["spec"];
  EXPECT_TRUE(spot_pod["affinity"]["nodeAffinity"].contains(
      "preferredDuringSchedulingIgnoredDuringExecution"));
  EXPECT_EQ(spot_pod["tolerations"][0]["key"], "spot");
  json gpu_container = Container(gpu_objects[0]);
  EXPECT_EQ(gpu_container["resources"]["limits"]["nvidia.com/gpu"], "1");
  EXPECT_EQ(gpu_objects[0]["spec"]["template"]["spec"]["tolerations"][0]["key"], "nvidia.com/gpu");
  EXPECT_EQ(Container(inf_objects[0])["resources"]["limits"]["aws.amazon.com/neuron"], "1");
}

TEST(Manifests, AnApiImageOfItsOwnIsKept) {
  config::ApiConfig api = Api(R"(
- name: custom
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, image: registry.example.com/team/iris:3}
)");
  config::ClusterConfig cluster = Cluster("image_predictor: registry.example.com/cortex:9\n");
  std::vector<json> objects = Realtime(api, cluster, 1);
  ExpectGolden("realtime-custom-image", objects);
  EXPECT_EQ(Container(objects[0])["image"], "registry.example.com/team/iris:3");
  EXPECT_EQ(PodImage(Api(kIris), cluster.kubernetes), "registry.example.com/cortex:9");
}

TEST(Manifests, APlacementThatCannotBeMetIsAnError) {
  config::ApiConfig api = Api(R"(
- name: gpu-api
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {gpu: 1}
)");
  ApiVersion version{&api, "a", "s", "p", "d", 1};
  auto objects = RealtimeApiObjects(
      version, Cluster("node_groups: [{name: cpu, node_labels: {a: b}}]\n").kubernetes);
  ASSERT_FALSE(objects.ok());
  EXPECT_THAT(objects.status().message(),
              HasSubstr("no node group of the cluster has NVIDIA GPUs"));
}

TEST(Manifests, ABatchJobIsAJobOfParallelWorkers) {
  config::ApiConfig api = Api(R"(
- name: image-classifier
  kind: BatchAPI
  predictor: {type: python, path: batch.py}
  compute: {cpu: 500m, mem: 1Gi}
)");
  json job = Batch(api, Cluster(kSpotGroups), 4, 3);
  ExpectGolden("batch-job", {job});
  EXPECT_EQ(job["kind"], "Job");
  EXPECT_EQ(job["metadata"]["name"], "image-classifier-69e2f1a0c3d4b5e6");
  EXPECT_EQ(job["spec"]["parallelism"], 4);
  EXPECT_FALSE(job["spec"].contains("completions"));  // the work-queue pattern
  EXPECT_EQ(job["spec"]["backoffLimit"], 2);          // the third failure fails the job
  EXPECT_EQ(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
  EXPECT_THAT(Container(job)["args"].get<std::vector<std::string>>(),
              ::testing::Contains("$(POD_NAME)"));
  EXPECT_EQ(Batch(api, Cluster(""), 1, 0)["spec"]["backoffLimit"], 2147483647);  // no limit
}

std::vector<std::string> Kinds(const std::vector<json>& objects) {
  std::vector<std::string> kinds;
  for (const auto& o : objects) kinds.push_back(o["kind"]);
  return kinds;
}

TEST(InstallManifests, InstallTheOperatorAndTheGateway) {
  std::vector<json> objects = InstallObjects(Cluster(""), "test-token");
  ExpectGolden("install-default", objects);
  EXPECT_THAT(Kinds(objects), ElementsAre("Namespace", "ServiceAccount", "Role", "RoleBinding",
                                          "Secret", "ConfigMap", "PersistentVolumeClaim",
                                          "Deployment", "Service", "Deployment", "Service"));
  const json& op = objects[7];
  EXPECT_EQ(op["spec"]["replicas"], 1);
  EXPECT_EQ(op["spec"]["strategy"]["type"], "Recreate");
  EXPECT_EQ(op["spec"]["template"]["spec"]["serviceAccountName"], "cortex-operator");
  EXPECT_EQ(objects[4]["stringData"]["token"], "test-token");
  // The ConfigMap carries the cluster configuration the servers read.
  auto config = config::ClusterConfig::FromJson(
      json::parse(objects[5]["data"]["cluster.json"].get<std::string>()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kubernetes.namespace_name, "cortex");
  // Both listeners behind the load balancer.
  const json& gateway_service = objects[10];
  EXPECT_EQ(gateway_service["spec"]["type"], "LoadBalancer");
  EXPECT_EQ(gateway_service["spec"]["ports"].size(), 2u);
}

TEST(InstallManifests, TheRoleGrantsOnlyWhatTheBackendDoes) {
  json rules = OperatorRules();
  for (const auto& rule : rules) {
    for (const auto& verb : rule["verbs"]) EXPECT_NE(verb, "*");
    for (const auto& resource : rule["resources"]) {
      EXPECT_NE(resource, "secrets");  // the token is mounted, never read through the API
      EXPECT_NE(resource, "*");
    }
  }
  std::vector<json> objects = InstallObjects(Cluster(""), "t");
  EXPECT_EQ(objects[2]["kind"], "Role");  // namespaced, not a ClusterRole
}

TEST(InstallManifests, FollowTheClusterConfiguration) {
  config::ClusterConfig cluster = Cluster(R"(
cluster_name: prod
namespace: ml
api_gateway: none
image: registry.example.com/cortex:1
image_operator: registry.example.com/cortex-operator:1
operator_service_type: ClusterIP
gateway_replicas: 3
operator_volume_size: 5Gi
storage_class: gp3
)");
  std::vector<json> objects = InstallObjects(cluster, "test-token");
  ExpectGolden("install-custom", objects);
  for (const auto& o : objects) {
    if (o["kind"] != "Namespace") {
      EXPECT_EQ(o["metadata"]["namespace"], "ml");
    }
    EXPECT_EQ(o["metadata"]["labels"]["cortex.dev/cluster"], "prod");
  }
  EXPECT_EQ(objects[6]["spec"]["storageClassName"], "gp3");
  EXPECT_EQ(objects[6]["spec"]["resources"]["requests"]["storage"], "5Gi");
  EXPECT_EQ(Container(objects[7])["image"], "registry.example.com/cortex-operator:1");
  EXPECT_EQ(objects[8]["spec"]["type"], "ClusterIP");
  EXPECT_EQ(objects[9]["spec"]["replicas"], 3);
  EXPECT_EQ(Container(objects[9])["image"], "registry.example.com/cortex:1");
  // api_gateway: none: only the load balancer's listener is exposed.
  json ports = objects[10]["spec"]["ports"];
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0]["name"], "load-balancer");
  EXPECT_THAT(Container(objects[9])["ports"].dump(), ::testing::Not(HasSubstr("api-gateway")));
}

}  // namespace
}  // namespace cortex::backends::kubernetes
