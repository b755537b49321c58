#include "backends/kubernetes/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/cluster_config.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

config::KubernetesConfig Cluster(const std::string& yaml) {
  auto parsed = config::ClusterConfig::FromYaml(yaml, "kubernetes");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->kubernetes : config::KubernetesConfig();
}

constexpr const char* kGroups = R"(
node_groups:
  - {name: spot, node_labels: {capacity: spot}, spot: true,
     tolerations: [{key: spot, value: "true", effect: NoSchedule}]}
  - {name: on-demand, node_labels: {capacity: on-demand}}
  - {name: gpu, node_labels: {capacity: gpu}, accelerator: nvidia}
)";

json Terms(const Placement& p) {
  return p.affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                   ["nodeSelectorTerms"];
}

TEST(Placement, WithoutNodeGroupsOnlyResourcesAreSet) {
  config::ComputeConfig compute;
  compute.cpu_milli = 1500;
  compute.mem_bytes = 1ll << 30;
  auto p = PlaceWorkload(compute, config::KubernetesConfig());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->resources, (json{{"requests", {{"cpu", "1500m"}, {"memory", "1Gi"}}},
                                {"limits", {{"memory", "1Gi"}}}}));
  EXPECT_TRUE(p->affinity.is_null());
  EXPECT_TRUE(p->tolerations.empty());
}

TEST(Placement, SpotIsPreferredWithTheOnDemandBackup) {
  auto p = PlaceWorkload(config::ComputeConfig(), Cluster(kGroups));
  ASSERT_TRUE(p.ok()) << p.status();
  // CPU workloads: the two CPU groups, not the GPU one.
  ASSERT_EQ(Terms(*p).size(), 2u);
  EXPECT_EQ(Terms(*p)[0]["matchExpressions"][0]["values"][0], "spot");
  EXPECT_EQ(Terms(*p)[1]["matchExpressions"][0]["values"][0], "on-demand");
  json preferred = p->affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
  ASSERT_EQ(preferred.size(), 1u);
  EXPECT_EQ(preferred[0]["preference"]["matchExpressions"][0]["values"][0], "spot");
  ASSERT_EQ(p->tolerations.size(), 1u);
  EXPECT_EQ(
      p->tolerations[0],
      (json{{"key", "spot"}, {"operator", "Equal"}, {"value", "true"}, {"effect", "NoSchedule"}}));
}

TEST(Placement, WithoutTheBackupOnlySpotNodesAreAllowed) {
  auto p = PlaceWorkload(config::ComputeConfig(),
                         Cluster(std::string(kGroups) + "on_demand_backup: false\n"));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(Terms(*p).size(), 1u);
  EXPECT_EQ(Terms(*p)[0]["matchExpressions"][0]["values"][0], "spot");
}

TEST(Placement, GpusGoToNvidiaGroupsAndTolerateTheirTaint) {
  config::ComputeConfig compute;
  compute.gpu = 2;
  auto p = PlaceWorkload(compute, Cluster(kGroups));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->resources["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(p->resources["requests"]["nvidia.com/gpu"], "2");
  ASSERT_EQ(Terms(*p).size(), 1u);
  EXPECT_EQ(Terms(*p)[0]["matchExpressions"][0]["values"][0], "gpu");
  EXPECT_FALSE(
      p->affinity["nodeAffinity"].contains("preferredDuringSchedulingIgnoredDuringExecution"));
  EXPECT_EQ(p->tolerations[0]["key"], "nvidia.com/gpu");
}

TEST(Placement, InferentiaWithoutAGroupIsRefused) {
  config::ComputeConfig compute;
  compute.inf = 1;
  auto p = PlaceWorkload(compute, Cluster(kGroups));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(),
              HasSubstr("compute: inf: no node group of the cluster has Inferentia chips"));
  // Without node groups the scheduler decides: the device is requested and tolerated.
  auto anywhere = PlaceWorkload(compute, config::KubernetesConfig());
  ASSERT_TRUE(anywhere.ok());
  EXPECT_EQ(anywhere->resources["limits"]["aws.amazon.com/neuron"], "1");
  EXPECT_EQ(anywhere->tolerations[0]["key"], "aws.amazon.com/neuron");
}

TEST(Placement, CpuWorkloadsUseAnyGroupWhenAllHaveAccelerators) {
  auto p = PlaceWorkload(config::ComputeConfig(),
                         Cluster("node_groups: [{name: g, node_labels: {a: b}, accelerator: "
                                 "nvidia}]\n"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Terms(*p).size(), 1u);
}

}  // namespace
}  // namespace cortex::backends::kubernetes
