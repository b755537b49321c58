// The Kubernetes provider's CLI side (docs/kubernetes.md): `cortex cluster up --provider
// kubernetes --dry-run` prints what would be installed, and `cortex deploy --dry-run --provider
// kubernetes` prints the objects each API of a cortex.yaml would become. Both render with the
// functions the Kubernetes backend applies (backends/kubernetes/) and touch no cluster.
#include <absl/strings/str_cat.h>

#include <filesystem>
#include <iostream>

#include "backends/kubernetes/install_manifests.h"
#include "backends/kubernetes/manifests.h"
#include "backends/kubernetes/yaml_stream.h"
#include "bundle/bundle.h"
#include "cli/commands.h"
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

}  // namespace

int ClusterUpKubernetes(const ClusterFlags& flags) {
  auto cluster =
      LoadKubernetesClusterConfig(flags.config_file, flags.namespace_name, flags.api_gateway);
  if (!cluster.ok()) return Fail(cluster.status());
  if (!flags.dry_run) {
    return Fail(absl::UnimplementedError(
        "installing into a cluster is not available yet: this build renders the installation "
        "(add --dry-run to print it) but does not apply it or run the operator's Kubernetes "
        "backend; see docs/kubernetes.md"));
  }
  std::vector<json> objects = k8s::InstallObjects(*cluster, RandomToken(24));
  std::cout << "# cortex cluster up --provider kubernetes --dry-run: namespace "
            << cluster->kubernetes.namespace_name << "\n# the operator's token is in the Secret "
            << k8s::kTokenSecret << "\n"
            << k8s::ToYamlStream(objects);
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
