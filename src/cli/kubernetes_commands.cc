// The Kubernetes provider's CLI side (docs/kubernetes.md): `cortex cluster up | down | info
// --provider kubernetes` install, remove and report the platform in a cluster through its REST
// API (backends/kubernetes/installer.h); with --dry-run, `cluster up` prints what it would
// install, and `cortex deploy --dry-run --provider kubernetes` the objects each API of a
// cortex.yaml would become, touching no cluster. All render with the functions the operator's
// Kubernetes backend applies.
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "backends/kubernetes/install_manifests.h"
#include "backends/kubernetes/installer.h"
#include "backends/kubernetes/kube_credentials.h"
#include "backends/kubernetes/kube_rest_client.h"
#include "backends/kubernetes/manifests.h"
#include "backends/kubernetes/yaml_stream.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
#include "cli/env_config.h"
#include "common/status.h"
#include "common/util.h"
#include "config/api_config.h"
#include "config/cluster_config.h"
#include "operator/deploy_plan.h"

namespace cortex::cli {

namespace {

namespace fs = std::filesystem;
namespace k8s = backends::kubernetes;
using nlohmann::json;

// cluster.yaml for the Kubernetes provider (the defaults without one), with the flags that
// override it.
absl::StatusOr<config::ClusterConfig> LoadKubernetesClusterConfig(const std::string& path,
                                                                  const std::string& namespace_name,
                                                                  const std::string& api_gateway) {
  config::ClusterConfig cluster;
  if (!path.empty()) {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    auto parsed = config::ClusterConfig::FromYaml(*text, "kubernetes");
    if (!parsed.ok()) return Annotate(parsed.status(), path);
    cluster = std::move(*parsed);
  }
  if (!namespace_name.empty()) {
    RETURN_IF_ERROR(config::CheckDnsLabel("--namespace", namespace_name));
    cluster.kubernetes.namespace_name = namespace_name;
  }
  if (!api_gateway.empty()) cluster.kubernetes.api_gateway = api_gateway;
  return cluster;
}

// The objects of one API, with the comment that introduces them.
absl::Status AppendApi(const config::ApiConfig& api, const std::string& project_id,
                       const config::KubernetesConfig& cluster, std::vector<json>& objects,
                       std::vector<std::string>& comments, std::string& notes) {
  std::string kind(config::KindName(api.kind));
  json spec = api.ToJson();
  op::VersionIds ids = op::ComputeVersionIds(api.name, kind, spec, project_id);
  // As the operator makes them at deploy (deploy_service.cc); the deployment id is new each time.
  std::string deployment_id = RandomId(10);
  std::string api_id = absl::StrCat(DecreasingHexId(), "-", deployment_id, "-", ids.spec_id);
  std::string label = absl::StrCat(api.name, " (", kind, ")");
  if (api.kind == config::Kind::kRealtimeAPI) {
    k8s::ApiVersion version{&api,          api_id,
                            ids.spec_id,   ids.predictor_id,
                            deployment_id, op::DesiredReplicas(api.autoscaling, 0)};
    auto rendered = k8s::RealtimeApiObjects(version, cluster);
    if (!rendered.ok()) return Annotate(rendered.status(), label);
    for (size_t i = 0; i < rendered->size(); ++i) {
      comments.push_back(i == 0 ? absl::StrCat(label, ": its replicas") : "");
      objects.push_back((*rendered)[i]);
    }
  } else if (api.kind == config::Kind::kBatchAPI) {
    k8s::BatchJob job{&api, api_id, DecreasingHexId(), /*workers=*/1, /*max_failures=*/0};
    auto rendered = k8s::BatchJobObject(job, cluster);
    if (!rendered.ok()) return Annotate(rendered.status(), label);
    comments.push_back(
        absl::StrCat(label,
                     ": each submitted job runs as a Job like this one (parallelism is the job's\n"
                     "workers; the job id is an example). Deploying creates no object."));
    objects.push_back(*rendered);
  } else {
    absl::StrAppend(&notes, "# ", label,
                    ": routed by the gateway to its APIs; it has no Kubernetes objects.\n");
  }
  return absl::OkStatus();
}

// The cluster's API at the kubeconfig's context, in the platform's namespace; the server it
// names, for messages.
struct Cluster {
  config::ClusterConfig config;
  std::unique_ptr<k8s::KubeRestClient> api;
  std::string server;
};

absl::StatusOr<Cluster> ConnectCluster(const ClusterFlags& flags) {
  Cluster cluster;
  ASSIGN_OR_RETURN(cluster.config, LoadKubernetesClusterConfig(
                                       flags.config_file, flags.namespace_name, flags.api_gateway));
  ASSIGN_OR_RETURN(k8s::KubeEndpoint endpoint,
                   k8s::LoadKubeconfig(flags.kubeconfig, flags.context));
  cluster.server = endpoint.server;
  cluster.api = std::make_unique<k8s::KubeRestClient>(
      std::move(endpoint), cluster.config.kubernetes.namespace_name, /*attempts=*/3,
      /*timeout_ms=*/20'000);
  return cluster;
}

void Progress(const std::string& line) { std::cout << "  " << line << "\n" << std::flush; }

std::string Ready(int ready, int wanted) { return absl::StrCat(ready, "/", wanted, " ready"); }

// What `cluster up` still waits for; empty once the platform can be used.
std::string Waiting(const k8s::PlatformState& state, bool need_operator_url) {
  std::vector<std::string> missing;
  if (state.operator_ready < 1) {
    missing.push_back("the operator (" + Ready(state.operator_ready, state.operator_wanted) + ")");
  }
  if (state.gateway_wanted == 0 || state.gateway_ready < state.gateway_wanted) {
    missing.push_back("the gateway (" + Ready(state.gateway_ready, state.gateway_wanted) + ")");
  }
  if (need_operator_url && state.operator_url.empty()) {
    missing.push_back("the operator's load balancer address");
  }
  std::string out = absl::StrJoin(missing, ", ");
  if (!out.empty() && !state.problems.empty()) {
    absl::StrAppend(&out, "; ", absl::StrJoin(state.problems, "; "));
  }
  return out;
}

// "no external address" for a Service the cloud has not given one (or that is not a load
// balancer).
std::string AddressOrNone(const std::string& url) {
  return url.empty() ? std::string("no external address") : url;
}

}  // namespace

int ClusterUpKubernetes(const ClusterFlags& flags) {
  if (flags.dry_run) {
    auto cluster =
        LoadKubernetesClusterConfig(flags.config_file, flags.namespace_name, flags.api_gateway);
    if (!cluster.ok()) return Fail(cluster.status());
    std::vector<json> objects = k8s::InstallObjects(*cluster, RandomToken(24));
    std::cout << "# cortex cluster up --provider kubernetes --dry-run: namespace "
              << cluster->kubernetes.namespace_name << "\n# the operator's token is in the Secret "
              << k8s::kTokenSecret << "\n"
              << k8s::ToYamlStream(objects);
    return 0;
  }
  auto cluster = ConnectCluster(flags);
  if (!cluster.ok()) return Fail(cluster.status());
  const std::string& ns = cluster->config.kubernetes.namespace_name;
  k8s::KubeApi& api = *cluster->api;
  // An installed platform keeps its token: the environments that use it go on working.
  auto token = k8s::InstalledToken(api);
  if (absl::IsNotFound(token.status())) token = RandomToken(24);
  if (!token.ok()) return Fail(Annotate(token.status(), cluster->server));
  std::cout << "installing the platform into namespace " << ns << " of " << cluster->server << "\n";
  std::vector<json> objects = k8s::InstallObjects(cluster->config, *token);
  if (absl::Status st = k8s::Install(api, objects, Progress); !st.ok()) return Fail(st);

  // The pods start (images are pulled) and the cloud assigns the load balancers' addresses.
  bool need_url = flags.operator_endpoint.empty();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(flags.kubernetes_wait_s);
  std::string said;
  absl::StatusOr<k8s::PlatformState> state;
  for (;;) {
    state = k8s::ObservePlatform(api, cluster->config.kubernetes);
    std::string waiting =
        state.ok() ? Waiting(*state, need_url) : std::string(state.status().message());
    if (state.ok() && waiting.empty()) break;
    if (waiting != said) Progress("waiting for " + waiting);
    said = waiting;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string hint =
          state.ok() && need_url && state->operator_ready >= 1 && state->operator_url.empty()
              ? absl::StrCat(" (the operator's Service is ", state->operator_service_type,
                             " with no load balancer address: reach it some other way, e.g. "
                             "kubectl -n ",
                             ns,
                             " port-forward svc/cortex-operator 8888, and run cluster up again "
                             "with --operator-endpoint http://127.0.0.1:8888)")
              : absl::StrCat(" (kubectl -n ", ns, " describe pods says why)");
      return Fail(absl::DeadlineExceededError(absl::StrCat(
          "the platform is installed but not ready after ", flags.kubernetes_wait_s,
          " s: waiting for ", waiting, hint, "; `cortex cluster up` again goes on from here")));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }

  std::string operator_url = need_url ? state->operator_url : flags.operator_endpoint;
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  Environment env{flags.env_name.empty() ? "kubernetes" : flags.env_name, "kubernetes",
                  operator_url, *token};
  config->Upsert(env);
  if (absl::Status st = SaveCliConfig(*config); !st.ok()) return Fail(st);
  std::cout << "the platform is up in namespace " << ns << "\n"
            << "operator:      " << operator_url << "\n"
            << "api gateway:   "
            << (cluster->config.kubernetes.api_gateway == "none"
                    ? "none (api_gateway: none)"
                    : AddressOrNone(state->api_gateway_url))
            << "\n"
            << "load balancer: " << AddressOrNone(state->load_balancer_url) << "\n"
            << "environment " << env.name << " is configured to use it\n";
  return 0;
}

int ClusterDownKubernetes(const ClusterFlags& flags) {
  auto cluster = ConnectCluster(flags);
  if (!cluster.ok()) return Fail(cluster.status());
  const std::string& ns = cluster->config.kubernetes.namespace_name;
  auto state = k8s::ObservePlatform(*cluster->api, cluster->config.kubernetes);
  if (!state.ok()) return Fail(Annotate(state.status(), cluster->server));
  std::vector<json> objects = k8s::InstallObjects(cluster->config, "");
  if (!state->installed && !k8s::AnythingInstalled(*cluster->api, objects)) {
    std::cout << "the platform is not installed in namespace " << ns << " of " << cluster->server
              << "\n";
    return 0;
  }
  std::string question =
      absl::StrCat("delete the platform in namespace ", ns, " of ", cluster->server, ", with its ",
                   state->realtime_apis, " realtime APIs, ", state->batch_jobs,
                   " batch jobs and the operator's state (the volume claim)?");
  if (!flags.yes && !Confirm(question, WithoutTerminal::kNo)) return 1;
  absl::Status st = k8s::Uninstall(*cluster->api, cluster->config.kubernetes, objects, Progress);
  if (!st.ok()) return Fail(st);
  std::cout << "the platform is removed from namespace " << ns
            << " (the cluster deletes the pods in the background)\n";
  return 0;
}

int ClusterInfoKubernetes(const ClusterFlags& flags, const CommonFlags& common) {
  auto cluster = ConnectCluster(flags);
  if (!cluster.ok()) return Fail(cluster.status());
  auto state = k8s::ObservePlatform(*cluster->api, cluster->config.kubernetes);
  if (!state.ok()) return Fail(Annotate(state.status(), cluster->server));
  const std::string& ns = cluster->config.kubernetes.namespace_name;
  if (common.output == "json") {
    json info = state->ToJson();
    info["server"] = cluster->server;
    info["namespace"] = ns;
    std::cout << info.dump(2) << "\n";
    return 0;
  }
  std::cout << "server:        " << cluster->server << "\nnamespace:     " << ns << "\n";
  if (!state->installed) {
    std::cout << "status:        not installed (`cortex cluster up --provider kubernetes`)\n";
    return 0;
  }
  std::cout << "operator:      " << Ready(state->operator_ready, state->operator_wanted) << ", "
            << AddressOrNone(state->operator_url) << "\n"
            << "gateway:       " << Ready(state->gateway_ready, state->gateway_wanted) << "\n"
            << "api gateway:   " << AddressOrNone(state->api_gateway_url) << "\n"
            << "load balancer: " << AddressOrNone(state->load_balancer_url) << "\n"
            << "apis:          " << state->realtime_apis << " realtime, " << state->batch_jobs
            << " batch jobs\n";
  for (const auto& problem : state->problems) std::cout << "problem:       " << problem << "\n";
  return 0;
}

int DeployDryRun(const DeployFlags& flags) {
  if (flags.provider != "kubernetes") {
    return Fail(absl::InvalidArgumentError(
        "--dry-run prints the Kubernetes objects of the APIs: add --provider kubernetes"));
  }
  auto cluster = LoadKubernetesClusterConfig(flags.cluster_config, flags.namespace_name, "");
  if (!cluster.ok()) return Fail(cluster.status());
  auto project = ReadProjectConfig(flags.config);
  if (!project.ok()) return Fail(project.status());
  const fs::path& config_path = project->file;
  const fs::path& root = project->root;
  config::ParseOptions parse = project->ParseOptions();
  parse.provider = "kubernetes";
  parse.cluster_api_gateway = cluster->kubernetes.api_gateway == "public";
  parse.max_replicas = cluster->limits.replicas_per_api;
  parse.max_config_bytes = cluster->limits.config_bytes;
  auto apis = config::ParseApiConfigs(project->yaml, parse);
  if (!apis.ok()) return Fail(apis.status());
  // The project's id is the hash of its bundle, as `cortex deploy` uploads it.
  auto files = bundle::ListProjectFiles(root, config_path.filename().string());
  if (!files.ok()) return Fail(files.status());
  auto archive = bundle::CreateBundle(root, *files);
  if (!archive.ok()) return Fail(archive.status());
  std::string project_id = Sha256Hex(*archive);

  std::vector<json> objects;
  std::vector<std::string> comments;
  std::string notes;
  for (const auto& api : *apis) {
    absl::Status st = AppendApi(api, project_id, cluster->kubernetes, objects, comments, notes);
    if (!st.ok()) return Fail(Annotate(st, parse.file_name));
  }
  std::cout << "# cortex deploy --dry-run --provider kubernetes: " << parse.file_name
            << " (namespace " << cluster->kubernetes.namespace_name << ")\n"
            << notes << k8s::ToYamlStream(objects, comments);
  return 0;
}

}  // namespace cortex::cli
