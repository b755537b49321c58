// cortex cluster up | down | info on the local provider.
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cluster_plan.h"
#include "cli/commands.h"
#include "cli/debug_bundle.h"
#include "cli/env_config.h"
#include "cli/operator_client.h"
#include "common/process.h"
#include "common/util.h"
#include "config/cluster_config.h"
#include "net/http_client.h"

namespace cortex::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path ClusterDir() { return fs::path(ConfigDir()) / "cluster"; }

// A port that was free a moment ago (the load balancer listener's, picked once and kept).
absl::StatusOr<int> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError("could not find a free port");
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string Tail(const fs::path& path, size_t lines) {
  auto text = ReadFile(path);
  if (!text.ok()) return "";
  std::string out = *text;
  size_t pos = out.size();
  for (size_t n = 0; n <= lines && pos != std::string::npos && pos > 0; ++n) {
    pos = out.rfind('\n', pos - 1);
  }
  return pos == std::string::npos ? out : out.substr(pos + 1);
}

absl::StatusOr<json> LoadClusterState() {
  auto text = ReadFile(ClusterDir() / "cluster.json");
  if (!text.ok()) return absl::NotFoundError("the local cluster is not running");
  auto state = json::parse(*text, nullptr, false);
  if (state.is_discarded()) return absl::InternalError("cluster.json is corrupted");
  return state;
}

// Starts `cortex <role> ...` detached, its output appended to logs/<role>.log.
absl::StatusOr<pid_t> StartDaemon(const std::string& role, std::vector<std::string> args) {
  SpawnOptions spawn;
  spawn.argv = {SelfExecutable(), role};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.output_path = (ClusterDir() / "logs" / (role + ".log")).string();
  spawn.group = SpawnOptions::Group::kNewSession;
  return Spawn(spawn);
}

// `pid` is the supervisor of this cluster (not a process that took its pid since).
bool IsOurSupervisor(pid_t pid) {
  if (pid <= 0 || !ProcessAlive(pid)) return false;
  std::string cmdline = CommandLine(pid);
  return absl::StrContains(cmdline, "supervisor") &&
         absl::StrContains(cmdline, ClusterDir().string());
}

// Both daemons in cluster.json answer their health checks (as themselves), as recorded by
// `supervisor`. False when it exits or `seconds` pass first.
bool WaitClusterHealthy(pid_t supervisor, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline && ProcessAlive(supervisor)) {
    auto state = LoadClusterState();
    if (state.ok() && (*state).value("supervisor_pid", 0) == supervisor &&
        AnswersAsItself((*state).value("operator_url", "") + "/healthz",
                        (*state).value("operator_pid", 0)) &&
        AnswersAsItself((*state).value("gateway_url", "") + "/_cortex/healthz",
                        (*state).value("gateway_pid", 0))) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// What the supervisor said last, and the end of the log of the daemon it names last.
int FailedStart() {
  std::string said = Tail(ClusterDir() / "logs" / "supervisor.log", 4);
  auto last = [&](const char* what) {
    size_t at = said.rfind(what);
    return at == std::string::npos ? -1 : static_cast<int64_t>(at);
  };
  std::string role = last("the gateway") > last("the operator") ? "gateway" : "operator";
  std::cerr << "error: the local cluster did not start; the supervisor says:\n"
            << said << "the " << role << "'s log ends with:\n"
            << Tail(ClusterDir() / "logs" / (role + ".log"), 10);
  return 1;
}

}  // namespace

int ClusterUp(const ClusterFlags& flags) {
  if (flags.provider == "kubernetes") return ClusterUpKubernetes(flags);
  if (flags.dry_run) {
    return Fail(absl::InvalidArgumentError(
        "--dry-run prints a Kubernetes installation: add --provider kubernetes"));
  }
  std::optional<config::ClusterConfig> cluster_config;
  if (!flags.config_file.empty()) {  // checked before anything starts
    auto text = ReadFile(flags.config_file);
    if (!text.ok()) return Fail(text.status());
    auto parsed = config::ClusterConfig::FromYaml(*text);
    if (!parsed.ok()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(flags.config_file, ": ", parsed.status().message())));
    }
    cluster_config = std::move(*parsed);
  }
  fs::create_directories(ClusterDir() / "logs");
  std::error_code ignored;  // state, tokens and logs: the owner's only (also when made earlier)
  fs::permissions(ConfigDir(), fs::perms::owner_all, fs::perm_options::replace, ignored);
  fs::permissions(ClusterDir(), fs::perms::owner_all, fs::perm_options::replace, ignored);
  std::string operator_url = absl::StrCat("http://", flags.host, ":", flags.operator_port);
  std::string gateway_url = absl::StrCat("http://", flags.host, ":", flags.gateway_port);
  std::string lb_url;  // the load balancer listener: fixed, or kept from the last start
  if (flags.lb_port > 0) lb_url = absl::StrCat("http://", flags.host, ":", flags.lb_port);
  fs::path token_file = ClusterDir() / "operator.token";
  if (!fs::exists(token_file)) {
    if (absl::Status st = WriteFileAtomic(token_file, RandomToken(24)); !st.ok()) return Fail(st);
  }
  auto token = ReadFile(token_file);
  if (!token.ok()) return Fail(token.status());
  fs::path config_path = ClusterDir() / "cluster-config.json";
  if (cluster_config) {
    if (absl::Status st = WriteFileAtomic(config_path, cluster_config->ToJson().dump(2));
        !st.ok()) {
      return Fail(st);
    }
  }

  // A running supervisor keeps its cluster (it restarts a daemon that died by itself); what is
  // left of an unsupervised one (its supervisor was killed, or an older version) is cleared.
  if (auto state = LoadClusterState(); state.ok()) {
    lb_url = lb_url.empty() ? (*state).value("lb_url", "") : lb_url;
    pid_t supervisor = (*state).value("supervisor_pid", 0);
    if (IsOurSupervisor(supervisor)) {
      if (!WaitClusterHealthy(supervisor, flags.wait_s)) return FailedStart();
      auto current = LoadClusterState();
      std::cout << "the local cluster is already running (operator "
                << (*current).value("operator_url", "") << ", gateway "
                << (*current).value("gateway_url", "") << ")\n";
      if (cluster_config) {
        std::cout << "the new cluster configuration applies from the next start (`cortex cluster "
                     "down`, then `cortex cluster up`)\n";
      }
      return 0;
    }
    for (const char* key : {"operator_pid", "gateway_pid"}) {
      if (pid_t pid = (*state).value(key, 0); ProcessAlive(pid)) StopGroup(pid, 2000);
    }
    fs::remove(ClusterDir() / "cluster.json");
  }
  if (auto kept = ReadFile(ClusterDir() / "lb_url"); lb_url.empty() && kept.ok()) {
    lb_url = *kept;  // the port chosen by an earlier `cluster up`, kept across `cluster down`
  }
  if (lb_url.empty()) {
    auto port = FreeLoopbackPort();
    if (!port.ok()) return Fail(port.status());
    lb_url = absl::StrCat("http://", flags.host, ":", *port);
  }
  std::string lb_port = lb_url.substr(lb_url.rfind(':') + 1);
  (void)WriteFileAtomic(ClusterDir() / "lb_url", lb_url);

  ClusterPlan plan;
  plan.operator_url = operator_url;
  plan.token_file = token_file.string();
  plan.state = {{"operator_url", operator_url}, {"gateway_url", gateway_url}, {"lb_url", lb_url}};
  plan.daemons = {
      {"operator",
       {"--data-dir", ClusterDir().string(), "--host", flags.host, "--port",
        std::to_string(flags.operator_port), "--token-file", token_file.string(), "--gateway-url",
        gateway_url, "--lb-url", lb_url, "--python", flags.python, "--autoscaler-tick-ms",
        std::to_string(flags.autoscaler_tick_ms), "--api-gateway",
        flags.api_gateway.empty() ? "public" : flags.api_gateway},
       operator_url + "/healthz"},
      {"gateway",
       {"--host", flags.host, "--port", std::to_string(flags.gateway_port), "--lb-port", lb_port,
        "--timeout-ms", std::to_string(flags.gateway_timeout_ms), "--operator-url", operator_url,
        "--token-file", token_file.string(), "--cluster-config", config_path.string()},
       gateway_url + "/_cortex/healthz"}};
  if (absl::Status st = WriteFileAtomic(ClusterDir() / "supervisor.json", plan.ToJson().dump(2));
      !st.ok()) {
    return Fail(st);
  }
  std::vector<std::string> supervisor_args = {"--cluster-dir", ClusterDir().string()};
  if (const char* wedged = std::getenv("CORTEX_WEDGED_AFTER_S"); wedged && *wedged) {
    supervisor_args.insert(supervisor_args.end(), {"--wedged-after-s", wedged});
  }
  auto supervisor = StartDaemon("supervisor", supervisor_args);
  if (!supervisor.ok()) return Fail(supervisor.status());
  if (!WaitClusterHealthy(*supervisor, 2 * flags.wait_s)) {
    StopGroup(*supervisor, 10'000);
    return FailedStart();
  }
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  Environment env{flags.env_name.empty() ? "local" : flags.env_name, "local", operator_url, *token};
  config->Upsert(env);
  if (absl::Status st = SaveCliConfig(*config); !st.ok()) return Fail(st);
  std::cout << "the local cluster is up\n"
            << "operator:      " << operator_url << "\n"
            << "api gateway:   " << gateway_url << "  (requests time out after "
            << flags.gateway_timeout_ms / 1000.0 << " s)\n"
            << "load balancer: " << lb_url << "  (no timeout)\n"
            << "environment " << env.name << " is configured to use it\n";
  return 0;
}

int ClusterDown(const ClusterFlags& flags) {
  if (flags.provider == "kubernetes") return ClusterDownKubernetes(flags);
  auto state = LoadClusterState();
  if (!state.ok()) {
    std::cout << "the local cluster is not running\n";
    return 0;
  }
  pid_t supervisor = (*state).value("supervisor_pid", 0);
  if (IsOurSupervisor(supervisor)) {
    // It stops the gateway, has the operator stop every replica, and exits.
    ::kill(supervisor, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (ProcessAlive(supervisor) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (ProcessAlive(supervisor)) StopGroup(supervisor, 0);
  }
  for (const char* key : {"operator_pid", "gateway_pid"}) {
    if (pid_t pid = (*state).value(key, 0); ProcessAlive(pid)) StopGroup(pid, 2000);
  }
  // Whatever the cluster started and no one stopped (replicas of an operator that was killed
  // meanwhile, their workers, batch workers): our processes that name the cluster's directory
  // (not, say, a `tail -f` of one of its logs).
  const std::string dir = ClusterDir().string(), self = SelfExecutable();
  int swept = StopProcesses(
      [&](const std::string& line) {
        return absl::StrContains(line, dir) &&
               (line.starts_with(self + " ") || absl::StrContains(line, "-m cortex_runtime."));
      },
      2000);
  if (swept > 0) std::cout << "stopped " << swept << " leftover processes of the cluster\n";
  fs::remove(ClusterDir() / "cluster.json");
  std::cout << "the local cluster is down\n";
  return 0;
}

// `cluster info --debug`: the archive for a bug report, in the current directory.
int WriteDebugArchive(const ClusterFlags& flags, const json& info) {
  DebugContents contents{info, nullptr, ""};
  auto client = OperatorClient::ForEnvironment(flags.env_name);
  auto apis = client.ok() ? client->CallJson("GET", "/v1/apis") : client.status();
  if (apis.ok()) {
    contents.apis = *apis;
  } else {
    contents.apis_error = std::string(apis.status().message());
  }
  auto path = WriteDebugBundle(ClusterDir(), contents, fs::current_path());
  if (!path.ok()) return Fail(path.status());
  std::cout << "wrote " << path->string()
            << " (the cluster's logs, state files and API specs, with predictor env and config "
               "values: review it before you share it)\n";
  return 0;
}

int ClusterInfo(const ClusterFlags& flags, const CommonFlags& common) {
  if (flags.provider == "kubernetes") return ClusterInfoKubernetes(flags, common);
  auto state = LoadClusterState();
  bool running = false;
  json info = {{"config_dir", ConfigDir()}, {"status", "stopped"}};
  if (state.ok()) {
    pid_t op_pid = (*state).value("operator_pid", 0);
    pid_t gw_pid = (*state).value("gateway_pid", 0);
    bool op_ok = AnswersAsItself((*state).value("operator_url", "") + "/healthz", op_pid);
    bool gw_ok = AnswersAsItself((*state).value("gateway_url", "") + "/_cortex/healthz", gw_pid);
    running = op_ok && gw_ok;
    info["status"] = running ? "running" : (op_ok || gw_ok ? "degraded" : "stopped");
    info["operator"] = {
        {"url", (*state).value("operator_url", "")}, {"pid", op_pid}, {"healthy", op_ok}};
    info["load_balancer"] = {{"url", (*state).value("lb_url", "")}};
    info["gateway"] = {
        {"url", (*state).value("gateway_url", "")}, {"pid", gw_pid}, {"healthy", gw_ok}};
    pid_t supervisor = (*state).value("supervisor_pid", 0);
    info["supervisor"] = {{"pid", supervisor}, {"running", IsOurSupervisor(supervisor)}};
  }
  if (common.output == "json") {
    std::cout << info.dump(2) << "\n";
  } else {
    std::cout << "status:   " << info["status"].get<std::string>() << "\n";
    if (info.contains("operator")) {
      std::cout << "operator: " << info["operator"]["url"].get<std::string>()
                << (info["operator"]["healthy"].get<bool>() ? "" : " (not responding)") << "\n"
                << "gateway:  " << info["gateway"]["url"].get<std::string>()
                << (info["gateway"]["healthy"].get<bool>() ? "" : " (not responding)") << "\n"
                << "load balancer: " << info["load_balancer"]["url"].get<std::string>() << "\n"
                << "supervisor: "
                << (info["supervisor"]["running"].get<bool>()
                        ? "running (restarts the operator and gateway if they stop)"
                        : "not running (`cortex cluster up` starts it)")
                << "\n";
    }
    std::cout << "data:     " << (ClusterDir()).string() << "\n";
  }
  if (flags.debug) {
    if (int code = WriteDebugArchive(flags, info); code != 0) return code;
  }
  return running ? 0 : 1;
}

}  // namespace cortex::cli
