#include "config/kubernetes_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/cluster_config.h"

namespace cortex::config {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ClusterConfig> Kubernetes(const std::string& yaml) {
  return ClusterConfig::FromYaml(yaml, "kubernetes");
}

TEST(KubernetesConfig, AnEmptyFileIsTheDefaults) {
  auto config = Kubernetes("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kubernetes.namespace_name, "cortex");
  EXPECT_EQ(config->kubernetes.api_gateway, "public");
  EXPECT_EQ(config->kubernetes.OperatorImage(), config->kubernetes.image);
  EXPECT_TRUE(config->kubernetes.node_groups.empty());
  EXPECT_TRUE(config->kubernetes.on_demand_backup);
}

TEST(KubernetesConfig, ReadsNodeGroupsImagesAndRoundTrips) {
  auto config = Kubernetes(R"(
cluster_name: prod
namespace: ml-serving
api_gateway: none
image: registry.example.com/cortex:1
image_gateway: registry.example.com/cortex-gateway:1
image_pull_policy: Always
gateway_replicas: 2
operator_volume_size: 2Gi
storage_class: gp3
on_demand_backup: false
limits:
  workers_per_job: 4
node_groups:
  - name: cpu-spot
    node_labels: {eks.amazonaws.com/capacityType: SPOT, workload: "true"}
    spot: true
    tolerations:
      - {key: workload, value: "true", effect: NoSchedule}
  - name: gpu
    node_labels: {node.kubernetes.io/instance-type: g4dn.xlarge}
    accelerator: nvidia
    tolerations:
      - {key: dedicated}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& k = config->kubernetes;
  EXPECT_EQ(k.cluster_name, "prod");
  EXPECT_EQ(k.namespace_name, "ml-serving");
  EXPECT_EQ(k.api_gateway, "none");
  EXPECT_EQ(k.OperatorImage(), "registry.example.com/cortex:1");
  EXPECT_EQ(k.GatewayImage(), "registry.example.com/cortex-gateway:1");
  EXPECT_EQ(k.gateway_replicas, 2);
  EXPECT_EQ(k.operator_volume_size, "2Gi");
  EXPECT_FALSE(k.on_demand_backup);
  ASSERT_EQ(k.node_groups.size(), 2u);
  EXPECT_TRUE(k.node_groups[0].spot);
  EXPECT_EQ(k.node_groups[0].node_labels.at("workload"), "true");
  EXPECT_EQ(k.node_groups[0].tolerations[0].value, "true");
  EXPECT_EQ(k.node_groups[1].accelerator, "nvidia");
  EXPECT_FALSE(k.node_groups[1].tolerations[0].value.has_value());
  EXPECT_EQ(config->limits.workers_per_job, 4);

  auto back = ClusterConfig::FromJson(config->ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), config->ToJson());
}

TEST(KubernetesConfig, TheLocalProviderRefusesItsSettings) {
  auto config = ClusterConfig::FromYaml("namespace: x\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr("namespace is a setting of the kubernetes provider"));
}

struct BadCase {
  const char* yaml;
  const char* message;
};

class KubernetesConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(KubernetesConfigErrors, NameTheField) {
  auto config = Kubernetes(GetParam().yaml);
  ASSERT_FALSE(config.ok()) << GetParam().yaml;
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubernetesConfigErrors,
    ::testing::Values(
        BadCase{"namespace: Prod\n", "namespace: \"Prod\" must be 1 to 63 lower-case"},
        BadCase{"namespace: -x\n", "namespace: \"-x\" must be"},
        BadCase{"api_gateway: private\n", "api_gateway: \"private\" is not one of public, none"},
        BadCase{"image: \"my image\"\n", "image: \"my image\" is not a valid image"},
        BadCase{"image_pull_policy: sometimes\n", "image_pull_policy: \"sometimes\" is not one of"},
        BadCase{"gateway_replicas: 0\n", "gateway_replicas: must be an integer from 1 to 100"},
        BadCase{"operator_volume_size: 1Mi\n", "operator_volume_size: must be at least 64Mi"},
        BadCase{"operator_volume_size: lots\n", "operator_volume_size:"},
        BadCase{"on_demand_backup: maybe\n", "on_demand_backup: must be true or false"},
        BadCase{"on_demand_backup: false\n", "on_demand_backup: false needs at least one node "
                                             "group with spot: true"},
        BadCase{"node_groups: {a: b}\n", "node_groups: must be a list of node groups"},
        BadCase{"node_groups: [{name: a}]\n", "node_groups[0]: node_labels is required"},
        BadCase{"node_groups: [{node_labels: {a: b}}]\n", "node_groups[0]: name is required"},
        BadCase{"node_groups: [{name: A_b, node_labels: {a: b}}]\n",
                "node_groups[0].name: \"A_b\" must be lower-case"},
        BadCase{"node_groups: [{name: a, node_labels: {\"bad key!\": b}}]\n",
                "\"bad key!\" is not a label key"},
        BadCase{"node_groups: [{name: a, node_labels: {k: \"-v\"}}]\n",
                "node_groups[0].node_labels.k: \"-v\" is not a label value"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}, accelerator: tpu}]\n",
                "node_groups[0].accelerator: \"tpu\" is not one of none, nvidia, inferentia"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}, spot: sometimes}]\n",
                "node_groups[0].spot: must be true or false"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}, tolerations: [{value: x}]}]\n",
                "node_groups[0].tolerations[0]: key is required"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}, tolerations: [{key: k, effect: "
                "Never}]}]\n",
                "node_groups[0].tolerations[0].effect: \"Never\" is not one of"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}, zone: x}]\n",
                "node_groups[0].zone: is not a node group field"},
        BadCase{"node_groups: [{name: a, node_labels: {k: v}}, {name: a, node_labels: {k: w}}]\n",
                "node_groups: \"a\" is named twice"},
        BadCase{"region: us-east-1\n", "region is not a cluster setting"}));

TEST(KubernetesNames, FollowTheApiServersRules) {
  EXPECT_TRUE(IsDnsLabel("cortex-1"));
  EXPECT_FALSE(IsDnsLabel(""));
  EXPECT_FALSE(IsDnsLabel("a-"));
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
  EXPECT_TRUE(IsLabelKey("node.kubernetes.io/instance-type"));
  EXPECT_TRUE(IsLabelKey("workload"));
  EXPECT_FALSE(IsLabelKey("/x"));
  EXPECT_FALSE(IsLabelKey("a..b/x"));
  EXPECT_FALSE(IsLabelKey("example.com/"));
  EXPECT_TRUE(IsLabelValue(""));
  EXPECT_TRUE(IsLabelValue("SPOT"));
  EXPECT_FALSE(IsLabelValue("a b"));
}

}  // namespace
}  // namespace cortex::config
