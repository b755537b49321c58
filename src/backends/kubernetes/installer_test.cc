// Installing, observing and removing the platform against an in-memory API.
#include "backends/kubernetes/installer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/kubernetes/apply.h"
#include "backends/kubernetes/install_manifests.h"
#include "backends/kubernetes/manifests.h"
#include "backends/kubernetes/testing/fake_kube_api.h"

namespace cortex::backends::kubernetes {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class InstallerTest : public ::testing::Test {
 protected:
  absl::Status Run(const config::ClusterConfig& cluster, const std::string& token = "t0k3n") {
    said_.clear();
    return Install(api_, InstallObjects(cluster, token),
                   [this](const std::string& line) { said_.push_back(line); });
  }

  testing::FakeKubeApi api_;
  config::ClusterConfig cluster_;
  std::vector<std::string> said_;
};

TEST_F(InstallerTest, CreatesEverythingThenChangesOnlyWhatDiffers) {
  ASSERT_TRUE(Run(cluster_).ok());
  EXPECT_EQ(api_.Count(kDeployments), 2u);
  EXPECT_EQ(api_.Count(kNamespaces), 1u);
  EXPECT_THAT(said_, Contains("created Role cortex-operator"));
  auto token = InstalledToken(api_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "t0k3n");

  api_.calls.clear();
  ASSERT_TRUE(Run(cluster_).ok());
  EXPECT_THAT(api_.Writes(), IsEmpty());
  EXPECT_THAT(said_, Contains("Namespace cortex exists"));

  cluster_.kubernetes.gateway_replicas = 2;
  cluster_.kubernetes.operator_volume_size = "9Gi";
  api_.calls.clear();
  ASSERT_TRUE(Run(cluster_).ok());
  // The configuration changed: its ConfigMap, and both servers' pods (which read it at start);
  // the volume claim's spec is immutable and stays.
  EXPECT_THAT(said_, Contains("updated ConfigMap cortex-cluster-config"));
  EXPECT_THAT(said_, Contains("updated Deployment cortex-gateway"));
  EXPECT_EQ(api_.Find(kDeployments, "cortex-gateway")->at("spec")["replicas"], 2);
  EXPECT_THAT(said_, Contains("PersistentVolumeClaim cortex-operator-data exists"));
  EXPECT_EQ(api_.Find(kPersistentVolumeClaims, "cortex-operator-data")
                ->at("spec")["resources"]["requests"]["storage"],
            "1Gi");
}

TEST_F(InstallerTest, NoTokenBeforeTheInstallAndAnErrorNamesTheObject) {
  EXPECT_TRUE(absl::IsNotFound(InstalledToken(api_).status()));
  ASSERT_TRUE(Run(cluster_).ok());
  // Someone else keeps writing the Role: three conflicts, then the error says which object.
  api_.before_replace = [this](const Resource& r, const std::string& name) {
    if (r.plural == kRoles.plural) api_.Put(r, *api_.Find(r, name));
  };
  api_.Find(kRoles, "cortex-operator")->at("metadata")["annotations"][kSpecHashAnnotation] = "x";
  absl::Status st = Run(cluster_);
  EXPECT_TRUE(absl::IsAborted(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("updating Role cortex-operator"));
}

TEST_F(InstallerTest, ObservesReadinessAddressesAndApis) {
  ASSERT_TRUE(Run(cluster_).ok());
  auto state = ObservePlatform(api_, cluster_.kubernetes);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->installed);
  EXPECT_EQ(state->operator_ready, 0);
  EXPECT_EQ(state->operator_url, "");
  json service = *api_.Find(kServices, "cortex-operator");
  service["status"] = {{"loadBalancer", {{"ingress", {{{"hostname", "lb.example.com"}}}}}}};
  api_.Put(kServices, service);
  json deployment = *api_.Find(kDeployments, "cortex-operator");
  deployment["status"] = {{"readyReplicas", 1}, {"updatedReplicas", 1}};
  api_.Put(kDeployments, deployment);
  state = ObservePlatform(api_, cluster_.kubernetes);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->operator_ready, 1);
  EXPECT_EQ(state->operator_url, "http://lb.example.com:8888");
  EXPECT_EQ(state->realtime_apis, 0);
}

TEST_F(InstallerTest, UninstallRemovesTheApisAndTheInstallationOnly) {
  ASSERT_TRUE(Run(cluster_).ok());
  json labels = PlatformLabels(cluster_.kubernetes, "api");
  labels["apiKind"] = "RealtimeAPI";
  api_.Put(kDeployments, {{"metadata", {{"name", "api-iris"}, {"labels", labels}}}});
  api_.Put(kDeployments, {{"metadata", {{"name", "not-ours"}}}});
  api_.calls.clear();
  std::vector<std::string> said;
  absl::Status st = Uninstall(api_, cluster_.kubernetes, InstallObjects(cluster_, ""),
                              [&](const std::string& line) { said.push_back(line); });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(said, Contains("deleted Deployment api-iris"));
  EXPECT_THAT(said, Contains("deleted Namespace cortex"));
  EXPECT_EQ(api_.Count(kDeployments), 1u);  // not-ours
  EXPECT_EQ(api_.Count(kSecrets), 0u);
  // The operator went first: it would have made the API's objects again.
  std::vector<std::string> writes = api_.Writes();
  ASSERT_FALSE(writes.empty());
  EXPECT_EQ(writes[0], "delete deployments/cortex-operator");
  EXPECT_FALSE(AnythingInstalled(api_, InstallObjects(cluster_, "")));
}

TEST_F(InstallerTest, AnOperatorPodThatDoesNotStopKeepsTheApis) {
  ASSERT_TRUE(Run(cluster_).ok());
  json labels = PlatformLabels(cluster_.kubernetes, "api");
  api_.Put(kDeployments, {{"metadata", {{"name", "api-iris"}, {"labels", labels}}}});
  api_.Put(kPods, {{"metadata",
                    {{"name", "cortex-operator-1"},
                     {"labels", PlatformLabels(cluster_.kubernetes, "operator")}}}});
  absl::Status st = Uninstall(
      api_, cluster_.kubernetes, InstallObjects(cluster_, ""), [](const std::string&) {},
      absl::ZeroDuration());
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("run cluster down again"));
  EXPECT_NE(api_.Find(kDeployments, "api-iris"), nullptr);
  EXPECT_TRUE(AnythingInstalled(api_, InstallObjects(cluster_, "")));
}

TEST_F(InstallerTest, ReadyCountsOnlyTheCurrentTemplatesPods) {
  ASSERT_TRUE(Run(cluster_).ok());
  json deployment = *api_.Find(kDeployments, "cortex-operator");
  deployment["metadata"]["generation"] = 2;
  // The old pod is still ready; the controller has not seen the new template yet.
  deployment["status"] = {{"readyReplicas", 1}, {"updatedReplicas", 1}, {"observedGeneration", 1}};
  api_.Put(kDeployments, deployment);
  EXPECT_EQ(ObservePlatform(api_, cluster_.kubernetes)->operator_ready, 0);
  deployment["status"] = {{"readyReplicas", 1}, {"updatedReplicas", 0}, {"observedGeneration", 2}};
  api_.Put(kDeployments, deployment);
  EXPECT_EQ(ObservePlatform(api_, cluster_.kubernetes)->operator_ready, 0);
  deployment["status"] = {{"readyReplicas", 1}, {"updatedReplicas", 1}, {"observedGeneration", 2}};
  api_.Put(kDeployments, deployment);
  EXPECT_EQ(ObservePlatform(api_, cluster_.kubernetes)->operator_ready, 1);
}

}  // namespace
}  // namespace cortex::backends::kubernetes
