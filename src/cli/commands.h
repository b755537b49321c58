// The CLI commands. Each returns the process exit code and prints what the user sees.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "config/api_config.h"

namespace cortex::cli {

struct CommonFlags {
  std::string env;                // -e/--env; empty: the default environment
  std::string output = "pretty";  // -o/--output: pretty | json
};

struct ClusterFlags {
  std::string env_name;  // empty: the provider's name ("local" or "kubernetes")
  int operator_port = 8890;
  int gateway_port = 8888;  // the API gateway listener
  int lb_port = 0;          // the load balancer listener; 0: a free port, kept across restarts
  int gateway_timeout_ms = 29'000;
  // Cluster-wide: "none" serves APIs on the load balancer only. Empty: "public" (or, on the
  // Kubernetes provider, cluster.yaml's api_gateway).
  std::string api_gateway;
  std::string host = "127.0.0.1";
  std::string python = "/usr/bin/python3";
  int wait_s = 60;
  int autoscaler_tick_ms = 10'000;
  std::string config_file;  // cluster.yaml: limits and allowed local paths (docs/security.md)
  // The Kubernetes provider (docs/kubernetes.md).
  std::string provider = "local";  // local | kubernetes
  bool dry_run = false;            // print what would be installed; touch no cluster
  std::string kubeconfig;
  std::string context;
  std::string namespace_name;  // empty: cluster.yaml's namespace (default "cortex")
  // Where the CLI reaches the installed operator when its Service has no load balancer address
  // (a port-forward, an ingress); empty: the LoadBalancer's address.
  std::string operator_endpoint;
  int kubernetes_wait_s = 600;  // cluster up: how long to wait for the operator and gateway
  bool yes = false;             // skip prompts
  bool debug = false;           // cluster info --debug: write a debug archive
};

int ClusterUp(const ClusterFlags& flags);
// `cortex cluster up | down | info --provider kubernetes` (kubernetes_commands.cc).
int ClusterUpKubernetes(const ClusterFlags& flags);
int ClusterDownKubernetes(const ClusterFlags& flags);
int ClusterInfoKubernetes(const ClusterFlags& flags, const CommonFlags& common);
int ClusterDown(const ClusterFlags& flags);
int ClusterInfo(const ClusterFlags& flags, const CommonFlags& common);

struct DeployFlags {
  std::string config;  // file or directory; default ./cortex.yaml
  bool force = false;
  bool yes = false;
  // --dry-run --provider kubernetes [--cluster-config cluster.yaml] [--namespace N]: print the
  // objects each API would become, without any cluster.
  bool dry_run = false;
  std::string provider;
  std::string cluster_config;
  std::string namespace_name;
};
int Deploy(const DeployFlags& flags, const CommonFlags& common);
int DeployDryRun(const DeployFlags& flags);

// The cortex.yaml that `config` names (a file, or a directory that holds one; default
// ./cortex.yaml): its absolute path, its project root and its text.
struct ProjectConfig {
  std::filesystem::path file;
  std::filesystem::path root;
  std::string yaml;

  // Options that name the file in errors and check the project's files below `root`.
  config::ParseOptions ParseOptions() const;
};
absl::StatusOr<ProjectConfig> ReadProjectConfig(const std::string& config);
// Applies a changed cortex.yaml to deployed APIs, with the project files they already have.
int Patch(const DeployFlags& flags, const CommonFlags& common);
// Restarts every replica of a RealtimeAPI with a rolling update.
int Refresh(const std::string& api, bool force, const CommonFlags& common);
// Prints [DeployResult] (messages on stdout, errors on stderr); non-zero when any failed.
int PrintDeployResults(const nlohmann::json& results, const CommonFlags& common, bool hints);
// v0.24's hints after a deploy: `cortex get`, `cortex get <api>` (`<api_name>` for several APIs)
// and, for a RealtimeAPI, `cortex logs <api>`; with ` --env E` unless E is the default.
std::string DeployHints(const nlohmann::json& results, const std::string& env);

// `watch`: print again every 2 s until interrupted.
int Get(const std::string& api, const std::string& job, bool verbose, bool watch,
        const CommonFlags& common);
int Logs(const std::string& api, const std::string& job, bool follow, const CommonFlags& common);
int Delete(const std::string& api, const std::string& job, bool force, const CommonFlags& common);
int Predict(const std::string& api, const std::string& json_file, const CommonFlags& common);
int Version(const CommonFlags& common);
// Prints the link to the environment's dashboard (with its token in the fragment).
int Dashboard(const CommonFlags& common);

struct EnvFlags {
  std::string name;
  std::string provider;
  std::string operator_endpoint;
  std::string operator_token;
};
int EnvConfigure(const EnvFlags& flags);
int EnvList(const CommonFlags& common);
int EnvDefault(const std::string& name);
int EnvDelete(const std::string& name);

// The one mapping from a failure to an exit code (and its message on stderr).
int Fail(const absl::Status& status);

// Asks a yes/no question on the terminal. Without a terminal to ask: kYes answers yes, with a
// note on stderr, so that scripts are not blocked; kNo (for what cannot be undone) answers no,
// saying to pass --yes.
enum class WithoutTerminal { kYes, kNo };
bool Confirm(const std::string& question, WithoutTerminal without_terminal);

}  // namespace cortex::cli
