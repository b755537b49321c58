// The cortex executable: the CLI and the server roles (operator, gateway, replica).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "apps/cortex/server_roles.h"
#include "apps/cortex/supervisor.h"
#include "cli/commands.h"
#include "cli/completion.h"
#include "common/process.h"

namespace {

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cortex;
  // The config directory holds tokens, state and logs: nothing we write is for other users.
  UsePrivateUmask();
  CLI::App app{"cortex: deploy machine-learning models as autoscaled HTTP APIs", "cortex"};
  app.require_subcommand(1);
  int code = 0;

  cli::CommonFlags common;
  auto add_common = [&](CLI::App* cmd, bool output = true) {
    cmd->add_option("-e,--env", common.env, "environment to use");
    if (output) {
      // v0.24's hidden `mixed` (what its Python client passed) prints JSON, as it did there.
      cmd->add_option("-o,--output", common.output, "output format: pretty | json")
          ->transform([](std::string value) { return value == "mixed" ? "json" : value; })
          ->check(CLI::IsMember({"pretty", "json"}));
    }
  };

  // cluster up | down | info
  cli::ClusterFlags cluster;
  cluster.operator_port = EnvInt("CORTEX_OPERATOR_PORT", 8890);
  cluster.gateway_port = EnvInt("CORTEX_GATEWAY_PORT", 8888);
  cluster.lb_port = EnvInt("CORTEX_LB_PORT", 0);
  cluster.autoscaler_tick_ms = EnvInt("CORTEX_AUTOSCALER_TICK_MS", 10'000);
  auto* cluster_cmd = app.add_subcommand("cluster", "manage the local cluster");
  cluster_cmd->require_subcommand(1);
  auto add_cluster_flags = [&](CLI::App* cmd) {
    cmd->add_option("--operator-port", cluster.operator_port,
                    "operator port (CORTEX_OPERATOR_PORT)");
    cmd->add_option("--gateway-port", cluster.gateway_port,
                    "API gateway listener port (CORTEX_GATEWAY_PORT)");
    cmd->add_option("--lb-port", cluster.lb_port,
                    "load balancer listener port (CORTEX_LB_PORT; default: a free port)");
    cmd->add_option("-e,--configure-env", cluster.env_name, "environment to configure");
  };
  auto* up = cluster_cmd->add_subcommand("up", "start the local operator and gateway");
  add_cluster_flags(up);
  up->add_option("--python", cluster.python, "default Python interpreter for predictors");
  up->add_option("--gateway-timeout-ms", cluster.gateway_timeout_ms,
                 "request timeout of the API gateway listener (default 29000)");
  up->add_option("--api-gateway", cluster.api_gateway,
                 "public | none: none serves every API on the load balancer only (default "
                 "public, or cluster.yaml's on Kubernetes)")
      ->check(CLI::IsMember({"public", "none"}));
  up->add_option("--autoscaler-tick-ms", cluster.autoscaler_tick_ms,
                 "how often the autoscaler decides (CORTEX_AUTOSCALER_TICK_MS, default 10000)");
  up->add_option("--config", cluster.config_file,
                 "cluster.yaml with the cluster's limits and allowed_local_paths (kept until the "
                 "next --config; see docs/security.md)");
  // The Kubernetes provider's flags, on up, down and info.
  auto add_kubernetes_flags = [&](CLI::App* cmd) {
    cmd->add_option("--provider", cluster.provider, "local | kubernetes (default local)")
        ->check(CLI::IsMember({"local", "kubernetes"}));
    cmd->add_option("--kubeconfig", cluster.kubeconfig,
                    "kubernetes: the kubeconfig file (default $KUBECONFIG, ~/.kube/config)");
    cmd->add_option("--context", cluster.context,
                    "kubernetes: the kubeconfig context (default its current one)");
    cmd->add_option("--namespace", cluster.namespace_name,
                    "kubernetes: the platform's namespace (default: cluster.yaml's, cortex)");
  };
  add_kubernetes_flags(up);
  up->add_flag("--dry-run", cluster.dry_run,
               "kubernetes: print the objects that would be installed, as YAML; touch no cluster");
  up->add_option("--operator-endpoint", cluster.operator_endpoint,
                 "kubernetes: the URL the CLI reaches the operator at, when its Service has no "
                 "load balancer address (a port-forward, an ingress)");
  up->add_option("--wait-s", cluster.kubernetes_wait_s,
                 "kubernetes: how long to wait for the operator and gateway (default 600)");
  up->add_flag("-y,--yes", cluster.yes, "skip prompts");
  up->callback([&] { code = cli::ClusterUp(cluster); });
  auto* down = cluster_cmd->add_subcommand("down", "stop the cluster and every replica");
  add_kubernetes_flags(down);
  down->add_option("--config", cluster.config_file, "kubernetes: the cluster.yaml of `up`");
  down->add_flag("-y,--yes", cluster.yes, "skip prompts");
  down->callback([&] { code = cli::ClusterDown(cluster); });
  auto* info = cluster_cmd->add_subcommand("info", "show the cluster's endpoints and state");
  add_kubernetes_flags(info);
  info->add_option("--config", cluster.config_file, "kubernetes: the cluster.yaml of `up`");
  info->add_option("-o,--output", common.output)->check(CLI::IsMember({"pretty", "json"}));
  info->add_option("-e,--configure-env", cluster.env_name,
                   "the environment whose operator lists the APIs for --debug");
  info->add_flag("-d,--debug", cluster.debug,
                 "also write cortex-debug-<time>.tar (logs and state) here, for a bug report");
  info->callback([&] { code = cli::ClusterInfo(cluster, common); });

  // deploy
  cli::DeployFlags deploy;
  auto* deploy_cmd = app.add_subcommand("deploy", "create or update apis");
  deploy_cmd->add_option("CONFIG", deploy.config, "path to a cortex.yaml or its directory");
  deploy_cmd->add_flag("-f,--force", deploy.force, "override the in-progress api update");
  deploy_cmd->add_flag("-y,--yes", deploy.yes, "skip prompts");
  deploy_cmd->add_flag("--dry-run", deploy.dry_run,
                       "print the objects the apis would become (with --provider kubernetes); "
                       "deploy nothing");
  deploy_cmd->add_option("--provider", deploy.provider, "with --dry-run: kubernetes")
      ->check(CLI::IsMember({"kubernetes"}));
  deploy_cmd->add_option("--cluster-config", deploy.cluster_config,
                         "with --dry-run: the cluster.yaml of the Kubernetes cluster");
  deploy_cmd->add_option("--namespace", deploy.namespace_name,
                         "with --dry-run: the namespace (default: cluster.yaml's, cortex)");
  add_common(deploy_cmd);
  deploy_cmd->callback([&] { code = cli::Deploy(deploy, common); });

  // patch
  auto* patch_cmd = app.add_subcommand("patch", "update deployed apis with a changed cortex.yaml");
  patch_cmd->add_option("CONFIG", deploy.config, "path to a cortex.yaml or its directory");
  patch_cmd->add_flag("-f,--force", deploy.force, "override the in-progress api update");
  add_common(patch_cmd);
  patch_cmd->callback([&] { code = cli::Patch(deploy, common); });

  // get
  std::string api, job_or_file;
  bool verbose = false;
  auto* get_cmd = app.add_subcommand("get", "get information about apis");
  get_cmd->add_option("API_NAME", api);
  get_cmd->add_option("JOB_ID", job_or_file, "a batch job of the API");
  bool watch = false;
  get_cmd->add_flag("-v,--verbose", verbose, "show additional information");
  get_cmd->add_flag("-w,--watch", watch, "re-run the command every 2 seconds");
  add_common(get_cmd);
  get_cmd->callback([&] { code = cli::Get(api, job_or_file, verbose, watch, common); });

  // logs
  bool no_follow = false;
  auto* logs_cmd = app.add_subcommand("logs", "stream logs from an api");
  logs_cmd->add_option("API_NAME", api)->required();
  logs_cmd->add_option("JOB_ID", job_or_file, "a batch job of the API");
  logs_cmd->add_flag("--no-follow", no_follow, "print what is there and exit");
  add_common(logs_cmd, false);
  logs_cmd->callback([&] { code = cli::Logs(api, job_or_file, !no_follow, common); });

  // delete
  bool force = false;
  auto* delete_cmd = app.add_subcommand("delete", "delete an api");
  delete_cmd->add_option("API_NAME", api)->required();
  delete_cmd->add_option("JOB_ID", job_or_file, "stop this batch job of the API");
  delete_cmd->add_flag("-f,--force", force, "delete without confirmation");
  bool keep_cache = false;
  delete_cmd->add_flag("-c,--keep-cache", keep_cache, "keep cached data for the api");
  add_common(delete_cmd);
  delete_cmd->callback([&] { code = cli::Delete(api, job_or_file, force, common); });

  // refresh
  bool refresh_force = false;
  auto* refresh_cmd = app.add_subcommand("refresh", "restart all replicas of an api (rolling)");
  refresh_cmd->add_option("API_NAME", api)->required();
  refresh_cmd->add_flag("-f,--force", refresh_force, "override the in-progress api update");
  add_common(refresh_cmd);
  refresh_cmd->callback([&] { code = cli::Refresh(api, refresh_force, common); });

  // predict
  auto* predict_cmd = app.add_subcommand("predict", "make a prediction request using a json file");
  predict_cmd->add_option("API_NAME", api)->required();
  predict_cmd->add_option("JSON_FILE", job_or_file)->required();
  add_common(predict_cmd, false);
  predict_cmd->callback([&] { code = cli::Predict(api, job_or_file, common); });

  // version
  auto* version_cmd = app.add_subcommand("version", "print the cli and cluster versions");
  add_common(version_cmd, false);
  version_cmd->callback([&] { code = cli::Version(common); });

  // dashboard
  auto* dashboard_cmd =
      app.add_subcommand("dashboard", "print the link to the environment's web dashboard");
  add_common(dashboard_cmd);
  dashboard_cmd->callback([&] { code = cli::Dashboard(common); });

  std::string shell;
  auto* completion_cmd = app.add_subcommand(
      "completion", "print the shell completion script: source <(cortex completion bash)");
  completion_cmd->add_option("shell", shell, "bash | zsh")->required();
  completion_cmd->callback([&] {
    absl::StatusOr<std::string> script = cli::CompletionScript(app, shell);
    if (!script.ok()) {
      std::cerr << "error: " << script.status().message() << "\n";
      code = 1;
      return;
    }
    std::cout << *script;
  });

  // env configure | list | default | delete
  cli::EnvFlags env_flags;
  auto* env_cmd = app.add_subcommand("env", "manage cli environments");
  env_cmd->require_subcommand(1);
  auto* env_configure = env_cmd->add_subcommand("configure", "configure an environment");
  env_configure->add_option("NAME", env_flags.name);
  env_configure->add_option("-p,--provider", env_flags.provider, "local | kubernetes");
  env_configure->add_option("-o,--operator-endpoint", env_flags.operator_endpoint);
  env_configure->add_option("-t,--operator-token", env_flags.operator_token);
  env_configure->callback([&] { code = cli::EnvConfigure(env_flags); });
  auto* env_list = env_cmd->add_subcommand("list", "list all configured environments");
  env_list->add_option("-o,--output", common.output)->check(CLI::IsMember({"pretty", "json"}));
  env_list->callback([&] { code = cli::EnvList(common); });
  auto* env_default = env_cmd->add_subcommand("default", "set the default environment");
  env_default->add_option("NAME", env_flags.name);
  env_default->callback([&] { code = cli::EnvDefault(env_flags.name); });
  auto* env_delete = env_cmd->add_subcommand("delete", "delete an environment configuration");
  env_delete->add_option("NAME", env_flags.name)->required();
  env_delete->callback([&] { code = cli::EnvDelete(env_flags.name); });

  // Server roles (started by `cortex cluster up` and by the operator).
  apps::OperatorRoleFlags op;
  auto* op_cmd = app.add_subcommand("operator", "run the operator (control plane)");
  op_cmd->group("");
  op_cmd->add_option("--data-dir", op.data_dir)->required();
  op_cmd->add_option("--host", op.host);
  op_cmd->add_option("--port", op.port);
  op_cmd->add_option("--token-file", op.token_file)->required();
  op_cmd->add_option("--gateway-url", op.gateway_url);
  op_cmd->add_option("--lb-url", op.lb_url);
  op_cmd->add_option("--api-gateway", op.api_gateway);
  op_cmd->add_option("--python", op.python);
  op_cmd->add_option("--autoscaler-tick-ms", op.autoscaler_tick_ms);
  op_cmd->add_option("--provider", op.provider)->check(CLI::IsMember({"local", "kubernetes"}));
  op_cmd->add_option("--namespace", op.namespace_name);
  op_cmd->add_option("--cluster-config", op.cluster_config);
  op_cmd->add_option("--kubeconfig", op.kubeconfig);
  op_cmd->add_option("--context", op.context);
  op_cmd->callback([&] { code = apps::RunOperator(op); });

  apps::SupervisorFlags sup;
  auto* sup_cmd =
      app.add_subcommand("supervisor", "run the supervisor of the operator and gateway");
  sup_cmd->group("");
  sup_cmd->add_option("--cluster-dir", sup.cluster_dir)->required();
  sup_cmd->add_option("--wedged-after-s", sup.wedged_after_s);
  sup_cmd->callback([&] { code = apps::RunSupervisor(sup); });

  apps::GatewayRoleFlags gw;
  auto* gw_cmd = app.add_subcommand("gateway", "run the gateway (data plane)");
  gw_cmd->group("");
  gw_cmd->add_option("--host", gw.host);
  gw_cmd->add_option("--port", gw.port);
  gw_cmd->add_option("--lb-port", gw.lb_port);
  gw_cmd->add_option("--timeout-ms", gw.timeout_ms);
  gw_cmd->add_option("--operator-url", gw.operator_url)->required();
  gw_cmd->add_option("--token-file", gw.token_file)->required();
  gw_cmd->add_option("--cluster-config", gw.cluster_config);
  gw_cmd->callback([&] { code = apps::RunGateway(gw); });

  apps::ReplicaPodRoleFlags pod;
  auto* pod_cmd = app.add_subcommand(
      "replica-pod", "run a replica in a Kubernetes pod (fetches its API from the operator)");
  pod_cmd->group("");
  pod_cmd->add_option("--operator", pod.operator_url)->required();
  pod_cmd->add_option("--token-file", pod.token_file)->required();
  pod_cmd->add_option("--api", pod.api)->required();
  pod_cmd->add_option("--predictor-id", pod.predictor_id)->required();
  pod_cmd->add_option("--id", pod.id);
  pod_cmd->add_option("--host", pod.host);
  pod_cmd->add_option("--port", pod.port);
  pod_cmd->add_option("--data-dir", pod.data_dir);
  pod_cmd->add_option("--python", pod.python);
  pod_cmd->add_option("--wait-s", pod.wait_s);
  pod_cmd->callback([&] { code = apps::RunReplicaPod(pod); });

  apps::WorkerPodRoleFlags worker_pod;
  auto* worker_pod_cmd = app.add_subcommand(
      "worker-pod",
      "run a batch worker in a Kubernetes Job's pod (fetches the job from the operator)");
  worker_pod_cmd->group("");
  worker_pod_cmd->add_option("--operator", worker_pod.operator_url)->required();
  worker_pod_cmd->add_option("--token-file", worker_pod.token_file)->required();
  worker_pod_cmd->add_option("--api", worker_pod.api)->required();
  worker_pod_cmd->add_option("--job", worker_pod.job)->required();
  worker_pod_cmd->add_option("--worker", worker_pod.worker);
  worker_pod_cmd->add_option("--data-dir", worker_pod.data_dir);
  worker_pod_cmd->add_option("--python", worker_pod.python);
  worker_pod_cmd->add_option("--wait-s", worker_pod.wait_s);
  worker_pod_cmd->callback([&] { code = apps::RunWorkerPod(worker_pod); });

  apps::ReplicaRoleFlags rep;
  auto* rep_cmd = app.add_subcommand("replica", "run one replica (front and worker processes)");
  rep_cmd->group("");
  rep_cmd->add_option("--id", rep.id)->required();
  rep_cmd->add_option("--spec", rep.spec)->required();
  rep_cmd->add_option("--host", rep.host);
  rep_cmd->add_option("--port", rep.port);
  rep_cmd->add_option("--port-file", rep.port_file);
  rep_cmd->add_option("--socket-dir", rep.socket_dir);
  rep_cmd->add_option("--unix-socket", rep.unix_socket,
                      "also listen on this Unix socket (the gateway's way in on one machine)");
  rep_cmd->add_option("--runtime-dir", rep.runtime_dir);
  rep_cmd->add_option("--python", rep.python);
  rep_cmd->add_option("--data-dir", rep.data_dir);
  rep_cmd->add_option("--max-log-line", rep.max_log_line);
  rep_cmd->callback([&] { code = apps::RunReplica(rep); });

  apps::WorkerSetupRoleFlags ws;
  auto* ws_cmd = app.add_subcommand(
      "worker-setup", "run a project's dependency files, then its interpreter with ARGS");
  ws_cmd->group("");
  ws_cmd->add_option("--id", ws.id);
  ws_cmd->add_option("--project-dir", ws.project_dir)->required();
  ws_cmd->add_option("--python", ws.python);
  ws_cmd->add_option("--data-dir", ws.data_dir)->required();
  ws_cmd->add_option("--spec", ws.spec);
  ws_cmd->add_option("ARGS", ws.args, "the interpreter's arguments (after --)");
  ws_cmd->callback([&] { code = apps::RunWorkerSetup(ws); });

  CLI11_PARSE(app, argc, argv);
  return code;
}
