// KubeRestClient through real sockets against FakeApiServer, and the backend over it: the same
// reconcile code as in the cluster, end to end over HTTP. Also the kubeconfig and in-cluster
// credentials.
#include "backends/kubernetes/kube_rest_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backends/kubernetes/kube_credentials.h"
#include "backends/kubernetes/kubernetes_backend.h"
#include "backends/kubernetes/testing/fake_api_server.h"
#include "backends/kubernetes/testing/replica_sets.h"
#include "config/api_config.h"

namespace cortex::backends::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

KubeEndpoint Endpoint(const testing::FakeApiServer& server, std::string token = "test-token") {
  KubeEndpoint endpoint;
  endpoint.server = server.url();
  endpoint.token = std::move(token);
  return endpoint;
}

json Deployment(const std::string& name) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"labels", {{"app", "x"}, {"tier", "web"}}}}},
          {"spec", {{"replicas", 1}}}};
}

TEST(KubeRestClient, CreatesReadsListsScalesReplacesAndDeletes) {
  testing::FakeApiServer server;
  KubeRestClient client(Endpoint(server), "cortex");
  auto created = client.Create(kDeployments, Deployment("a"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE((*created)["metadata"]["resourceVersion"].get<std::string>().empty());
  ASSERT_TRUE(client.Create(kDeployments, Deployment("b")).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(client.Create(kDeployments, Deployment("a")).status()));

  auto list = client.List(kDeployments, "app=x,tier=web");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)["items"].size(), 2u);
  EXPECT_EQ((*client.List(kDeployments, "tier=db"))["items"].size(), 0u);

  ASSERT_TRUE(client.Scale(kDeployments, "a", 4).ok());
  auto a = client.Get(kDeployments, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["spec"]["replicas"], 4);

  json stale = *created;  // read before the scale: its version is old
  stale["spec"]["paused"] = true;
  auto conflict = client.Replace(kDeployments, stale);
  EXPECT_TRUE(absl::IsAborted(conflict.status())) << conflict.status();
  EXPECT_THAT(conflict.status().message(), HasSubstr("the object has been modified"));
  json fresh = *a;
  fresh["spec"]["paused"] = true;
  EXPECT_TRUE(client.Replace(kDeployments, fresh).ok());

  EXPECT_TRUE(client.Delete(kDeployments, "a").ok());
  EXPECT_TRUE(absl::IsNotFound(client.Get(kDeployments, "a").status()));
  EXPECT_TRUE(absl::IsNotFound(client.Delete(kDeployments, "a")));
  std::lock_guard lock(server.mu);
  EXPECT_THAT(
      server.requests,
      Contains(
          "GET /apis/apps/v1/namespaces/cortex/deployments?labelSelector=app%3Dx%2Ctier%3Dweb"));
  EXPECT_THAT(server.requests,
              Contains("PATCH /apis/apps/v1/namespaces/cortex/deployments/a/scale"));
}

TEST(KubeRestClient, RetriesUnavailableAnswersAndGivesUp) {
  testing::FakeApiServer server;
  KubeRestClient client(Endpoint(server), "cortex", /*attempts=*/3);
  {
    std::lock_guard lock(server.mu);
    server.fail_next = 2;
  }
  EXPECT_TRUE(client.Create(kServices, {{"metadata", {{"name", "s"}}}}).ok());
  {
    std::lock_guard lock(server.mu);
    server.fail_next = 5;
  }
  auto failed = client.Get(kServices, "s");
  EXPECT_TRUE(absl::IsUnavailable(failed.status()));
  EXPECT_THAT(
      failed.status().message(),
      HasSubstr("GET /api/v1/namespaces/cortex/services/s: the server is currently unable"));
}

TEST(KubeRestClient, AWrongTokenIsUnauthenticatedAndARefusedPortUnavailable) {
  testing::FakeApiServer server;
  KubeRestClient wrong(Endpoint(server, "nope"), "cortex");
  EXPECT_TRUE(absl::IsUnauthenticated(wrong.Get(kPods, "p").status()));
  KubeEndpoint closed;
  closed.server = "http://127.0.0.1:9";
  KubeRestClient away(closed, "cortex", /*attempts=*/2);
  EXPECT_TRUE(absl::IsUnavailable(away.List(kPods, "").status()));
}

TEST(KubeRestClient, TheBackendReconcilesThroughHttp) {
  testing::FakeApiServer server;
  KubeRestClient client(Endpoint(server), "cortex");
  ReplicaSetSpec set = testing::IrisReplicaSet(2);
  KubernetesBackend backend(client, config::KubernetesConfig());
  auto status = backend.SyncReplicaSets({set});
  EXPECT_THAT(status[0].events,
              ElementsAre("created Deployment api-iris", "created Service api-iris"));
  set.replicas = 3;
  status = backend.SyncReplicaSets({set});
  EXPECT_THAT(status[0].events, ElementsAre("scaled Deployment api-iris to 3"));
  set.predictor_id = "p2";
  status = backend.SyncReplicaSets({set});
  EXPECT_THAT(status[0].events, Contains("updated Deployment api-iris"));
  backend.SyncReplicaSets({});
  std::lock_guard lock(server.mu);
  EXPECT_EQ(server.api.Count(kDeployments), 0u);
}

class Kubeconfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cx-kubeconfig-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "ca.crt") << "CA PEM";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& text) {
    std::ofstream(dir_ / "config") << text;
    return (dir_ / "config").string();
  }
  fs::path dir_;
};

constexpr const char* kConfig = R"(
apiVersion: v1
kind: Config
current-context: dev
contexts:
  - name: dev
    context: {cluster: c1, user: token-user, namespace: ml}
  - name: prod
    context: {cluster: c2, user: cert-user}
  - name: eks
    context: {cluster: c2, user: exec-user}
clusters:
  - name: c1
    cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
  - name: c2
    cluster: {server: "https://k8s.example.com", certificate-authority-data: Q0EgREFUQQ==,
              insecure-skip-tls-verify: true}
users:
  - name: token-user
    user: {token: abc123}
  - name: cert-user
    user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
  - name: exec-user
    user: {exec: {command: aws, args: [eks, get-token]}}
)";

TEST_F(Kubeconfig, ReadsTheCurrentContextOrTheNamedOne) {
  std::string path = Write(kConfig);
  auto dev = LoadKubeconfig(path, "");
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->server, "https://10.0.0.1:6443");
  EXPECT_EQ(dev->token, "abc123");
  EXPECT_EQ(dev->ca_pem, "CA PEM");  // the file, relative to the kubeconfig
  EXPECT_EQ(dev->namespace_name, "ml");
  auto prod = LoadKubeconfig(path, "prod");
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(prod->ca_pem, "CA DATA");
  EXPECT_EQ(prod->client_cert_pem, "CERT");
  EXPECT_EQ(prod->client_key_pem, "KEY");
  EXPECT_TRUE(prod->insecure_skip_verify);
}

TEST_F(Kubeconfig, SaysWhatItCannotUse) {
  std::string path = Write(kConfig);
  auto eks = LoadKubeconfig(path, "eks");
  ASSERT_FALSE(eks.ok());
  EXPECT_THAT(eks.status().message(),
              HasSubstr("user exec-user gets its credentials from a plugin"));
  EXPECT_THAT(LoadKubeconfig(path, "staging").status().message(),
              HasSubstr("the kubeconfig has no contexts entry named \"staging\""));
  EXPECT_THAT(LoadKubeconfig((dir_ / "missing").string(), "").status().message(),
              HasSubstr("kubeconfig"));
}

TEST_F(Kubeconfig, InClusterReadsTheServiceAccount) {
  std::ofstream(dir_ / "token") << "sa-token\n";
  std::ofstream(dir_ / "namespace") << "cortex";
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto endpoint = InClusterEndpoint(dir_.string());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->server, "https://10.96.0.1:443");
  EXPECT_EQ(endpoint->token, "sa-token");
  EXPECT_EQ(endpoint->token_file, (dir_ / "token").string());
  EXPECT_EQ(endpoint->ca_pem, "CA PEM");
  EXPECT_EQ(endpoint->namespace_name, "cortex");
  EXPECT_THAT(InClusterEndpoint(dir_.string()).status().message(),
              HasSubstr("not in a Kubernetes pod"));
}

}  // namespace
}  // namespace cortex::backends::kubernetes
