#include "apps/cortex/server_roles.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include "backends/kubernetes/kube_credentials.h"
#include "backends/kubernetes/kube_rest_client.h"
#include "backends/kubernetes/kubernetes_backend.h"
#include "backends/kubernetes/pod_logs.h"
#include "backends/local/capacity.h"
#include "backends/local/containment.h"
#include "backends/local/local_backend.h"
#include "backends/local/process_runner.h"
#include "common/clock.h"
#include "common/json_fields.h"
#include "common/process.h"
#include "common/status.h"
#include "common/util.h"
#include "config/api_config.h"
#include "config/cluster_config.h"
#include "gateway/gateway.h"
#include "gateway/route_watcher.h"
#include "models/model_syncer.h"
#include "operator/api_views.h"
#include "operator/autoscaling.h"
#include "operator/deploy_service.h"
#include "operator/job_service.h"
#include "operator/job_supervisor.h"
#include "operator/lease_service.h"
#include "operator/operator_server.h"
#include "operator/reconciler.h"
#include "replica/front.h"
#include "replica/project_setup.h"
#include "store/sqlite/sqlite_job_queue.h"
#include "store/sqlite/sqlite_state_store.h"

namespace cortex::apps {

namespace asio = net::asio;
namespace fs = std::filesystem;

namespace {

std::string ReadToken(const std::string& path) {
  auto token = ReadFile(path);
  return token.ok() ? std::string(absl::StripAsciiWhitespace(*token)) : "";
}

void Log(std::string_view role, std::string_view message) {
  std::cout << "[" << role << "] " << message << std::endl;
}

// The projects something may still run from: those of the deployed APIs, and the project_dir
// of every spec under run/ (replicas of an older version during a rollout, batch workers).
// Nothing when the store cannot say.
std::optional<std::set<std::string>> ProjectsInUse(store::StateStore& store,
                                                   const std::string& data_dir) {
  std::set<std::string> keep;
  auto apis = store.ListApis();
  if (!apis.ok()) return std::nullopt;
  for (const auto& api : *apis) keep.insert(api.project_id);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(data_dir) / "run", ec)) {
    if (entry.path().extension() != ".json") continue;
    auto text = ReadFile(entry.path());
    if (!text.ok()) continue;
    auto spec = nlohmann::json::parse(*text, nullptr, false);
    if (spec.is_object() && spec.contains("project_dir") && spec["project_dir"].is_string()) {
      keep.insert(fs::path(spec["project_dir"].get<std::string>()).filename().string());
    }
  }
  return keep;
}

// The model versions some replica's or job's manifest names (their cache directory names).
// Nothing when a manifest cannot be read: then nothing is pruned.
std::optional<std::set<std::string>> ModelsInUse(const std::string& data_dir) {
  std::set<std::string> keep;
  std::error_code ec;
  fs::directory_iterator entries(fs::path(data_dir) / "run", ec);
  if (ec) return std::nullopt;
  for (const auto& entry : entries) {
    std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, ".models.json")) continue;
    auto text = ReadFile(entry.path());
    if (!text.ok()) {
      if (fs::exists(entry.path())) return std::nullopt;
      continue;  // its replica went meanwhile
    }
    auto manifest = nlohmann::json::parse(*text, nullptr, false);
    if (!manifest.is_object() || !manifest["models"].is_object()) return std::nullopt;
    for (const auto& [name, model] : manifest["models"].items()) {
      if (!model.is_object() || !model["versions"].is_object()) continue;
      for (const auto& [version, entry_json] : model["versions"].items()) {
        if (entry_json.is_object() && entry_json["path"].is_string()) {
          keep.insert(fs::path(entry_json["path"].get<std::string>()).filename().string());
        }
      }
    }
  }
  return keep;
}

// One write per line keeps lines whole in a log file other processes append to.
void WriteLine(std::string_view line) {
  std::string out = absl::StrCat(std::string(line), "\n");
  (void)!::write(STDOUT_FILENO, out.data(), out.size());
}

replica::ProjectSetupOptions SetupOptions(const std::string& id, const std::string& project_dir,
                                          const std::string& python, const std::string& data_dir) {
  replica::ProjectSetupOptions setup;
  setup.project_dir = project_dir;
  setup.python = python;
  setup.data_dir = data_dir;
  setup.log = [prefix = absl::StrCat("[", id, " setup] ")](std::string_view line) {
    WriteLine(absl::StrCat(prefix, std::string(line)));
  };
  return setup;
}

// A replica's or batch worker's models, synced once: on disk, and in the manifest its workers
// read. Null when the API has no models.
struct ModelsOnDisk {
  std::unique_ptr<models::ModelStore> store;
  std::unique_ptr<models::ModelSyncer> syncer;
};
absl::StatusOr<std::unique_ptr<ModelsOnDisk>> SyncModels(const nlohmann::json& spec,
                                                         const config::PredictorConfig& predictor,
                                                         const std::string& project_dir,
                                                         const std::string& id) {
  if (!predictor.HasModels()) return nullptr;
  models::SyncerOptions sync;
  sync.models = models::ModelsOf(predictor, project_dir);
  sync.cache_root = StringField(spec, "models_cache");
  sync.manifest_path = StringField(spec, "models_manifest");
  // With caching, the replica deletes what it evicts: a directory of its own, not the shared one.
  if (sync.models.cache_size > 0 && !sync.cache_root.empty()) {
    sync.cache_root = sync.cache_root / "replicas" / id;
  }
  sync.log = [prefix = absl::StrCat("[", id, " models] ")](const std::string& line) {
    WriteLine(absl::StrCat(prefix, line));
  };
  if (sync.cache_root.empty() || sync.manifest_path.empty()) {
    return absl::InvalidArgumentError("the spec names no models_cache or models_manifest");
  }
  auto on_disk = std::make_unique<ModelsOnDisk>();
  on_disk->store = models::DefaultModelStore();
  on_disk->syncer = std::make_unique<models::ModelSyncer>(std::move(sync), *on_disk->store);
  if (absl::Status synced = on_disk->syncer->Sync(); !synced.ok()) {
    return absl::Status(synced.code(),
                        absl::StrCat("cannot fetch the models: predictor: ", synced.message()));
  }
  return on_disk;
}

}  // namespace

std::string DefaultRuntimeDir() {
  if (const char* dir = std::getenv("CORTEX_PYTHON_RUNTIME_DIR"); dir && *dir) return dir;
  fs::path installed =
      fs::path(SelfExecutable()).parent_path().parent_path() / "share" / "cortex" / "python";
  if (fs::exists(installed / "cortex_runtime")) return installed.string();
  return CORTEX_SOURCE_PYTHON_DIR;
}

namespace {

// The Kubernetes API the operator's backend talks to: the pod's service account, or a kubeconfig
// (an operator run outside the cluster). The namespace: the flag, else cluster.yaml's.
absl::StatusOr<std::unique_ptr<backends::kubernetes::KubeApi>> KubernetesApi(
    const OperatorRoleFlags& flags, config::ClusterConfig& cluster) {
  if (!flags.namespace_name.empty()) cluster.kubernetes.namespace_name = flags.namespace_name;
  auto endpoint = flags.kubeconfig.empty()
                      ? backends::kubernetes::InClusterEndpoint()
                      : backends::kubernetes::LoadKubeconfig(flags.kubeconfig, flags.context);
  if (!endpoint.ok()) return endpoint.status();
  return std::make_unique<backends::kubernetes::KubeRestClient>(std::move(*endpoint),
                                                                cluster.kubernetes.namespace_name);
}

}  // namespace

int RunOperator(const OperatorRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  fs::create_directories(flags.data_dir);
  std::string token = ReadToken(flags.token_file);
  if (token.empty()) {
    std::cerr << "operator: no token in " << flags.token_file << "\n";
    return 1;
  }
  auto store = store::SqliteStateStore::Open(flags.data_dir + "/state.db");
  auto job_queue = store::SqliteJobQueue::Open(flags.data_dir + "/state.db");
  if (!store.ok() || !job_queue.ok()) {
    std::cerr << "operator: " << (store.ok() ? job_queue.status() : store.status()).message()
              << "\n";
    return 1;
  }
  auto cluster = config::ClusterConfig::Load(flags.cluster_config.empty()
                                                 ? fs::path(flags.data_dir) / "cluster-config.json"
                                                 : fs::path(flags.cluster_config));
  if (!cluster.ok()) {
    std::cerr << "operator: " << cluster.status().message() << "\n";
    return 1;
  }
  const config::ClusterLimits& limits = cluster->limits;
  const Clock& clock = SystemClock();

  // The local provider: replica and worker sets as child processes.
  backends::local::ProcessRunnerOptions runner_options;
  runner_options.data_dir = flags.data_dir;
  runner_options.executable = SelfExecutable();
  runner_options.runtime_dir = DefaultRuntimeDir();
  runner_options.host = flags.host;
  runner_options.log_line_bytes = limits.log_line_bytes;
  backends::local::ReplicaControllerOptions replica_options;
  replica_options.data_dir = flags.data_dir;
  replica_options.capacity = backends::local::DetectCapacity();
  Log("operator", backends::local::DescribeContainment());
  std::unique_ptr<backends::kubernetes::KubeApi> kube_api;
  std::unique_ptr<backends::Backend> backend_owner;
  backends::kubernetes::KubernetesBackend* kubernetes_backend = nullptr;
  if (flags.provider == "kubernetes") {
    auto api = KubernetesApi(flags, *cluster);
    if (!api.ok()) {
      std::cerr << "operator: " << api.status().message() << "\n";
      return 1;
    }
    kube_api = std::move(*api);
    // The pods come from watches (their own threads), not from a list every pass.
    backends::kubernetes::KubernetesBackendOptions backend_options;
    backend_options.watch_pods = true;
    auto kubernetes = std::make_unique<backends::kubernetes::KubernetesBackend>(
        *kube_api, cluster->kubernetes, backend_options);
    kubernetes_backend = kubernetes.get();
    backend_owner = std::move(kubernetes);
    Log("operator",
        absl::StrCat("kubernetes provider: namespace ", cluster->kubernetes.namespace_name));
  } else {
    backend_owner = std::make_unique<backends::local::LocalBackend>(
        replica_options, backends::local::WorkerControllerOptions{flags.data_dir}, **store,
        **job_queue, std::make_unique<backends::local::ProcessRunner>(runner_options), clock);
  }
  backends::Backend& backend = *backend_owner;

  // The control plane.
  op::SpecCache specs;
  op::BundleStore bundles(flags.data_dir);
  op::ApiLogs logs(flags.data_dir, limits.log_file_bytes);
  // On Kubernetes the replicas' and workers' output is in their pods: copied into the logs.
  std::unique_ptr<backends::kubernetes::PodLogs> pod_logs;
  if (kube_api) {
    pod_logs = std::make_unique<backends::kubernetes::PodLogs>(
        *kube_api,
        [&logs](const std::string& api, const std::string& job_id, const std::string& text) {
          logs.AppendOutput(api, job_id, text);
        },
        [kubernetes_backend](const std::string& api_kind) {
          return kubernetes_backend->WatchedPods(api_kind);
        },
        (fs::path(flags.data_dir) / "logs" / "pod-log-cursors.json").string());
  }
  op::ReconcilerOptions reconciler_options;
  reconciler_options.gateway_url = flags.gateway_url;
  reconciler_options.lb_url = flags.lb_url;
  reconciler_options.default_python = flags.python;
  op::Reconciler reconciler(reconciler_options, **store, specs, backend, logs, clock);
  op::DeployOptions deploy_options;
  deploy_options.provider = flags.provider;
  deploy_options.cluster_api_gateway = flags.api_gateway != "none";
  deploy_options.max_replicas = limits.replicas_per_api;
  deploy_options.max_config_bytes = limits.config_bytes;
  op::DeployService deploys(deploy_options, **store, specs, bundles, logs, reconciler, clock);
  std::unique_ptr<models::ModelStore> model_store = models::DefaultModelStore();
  deploys.EnableModels(model_store.get());
  op::ApiViews views({flags.gateway_url, flags.lb_url}, **store, specs, reconciler, logs);

  // Batch jobs.
  op::BatchOptions batch_options;
  batch_options.operator_url = absl::StrCat("http://", flags.host, ":", flags.port);
  batch_options.token = token;
  batch_options.default_python = flags.python;
  batch_options.max_submission_bytes = limits.job_submission_bytes;
  batch_options.plan_limits = {cluster->allowed_local_paths, limits.batches_per_job,
                               limits.workers_per_job, limits.json_depth};
  op::JobService jobs(batch_options, **job_queue, logs, clock);
  op::LeaseService leases(**job_queue, logs, clock, batch_options.lease_ms);
  op::JobSupervisor supervisor(batch_options, **job_queue, **store, specs, backend, logs, clock);
  deploys.EnableBatchJobs(&jobs);
  views.EnableBatchJobs(&jobs);
  // Housekeeping on the control loop: logs rotate (a few stat calls, every 10 s); projects and
  // model versions nothing uses are removed an hour after their last use (every 10 minutes).
  auto next_rotation = std::chrono::steady_clock::now();
  auto next_prune = next_rotation + std::chrono::minutes(1);
  auto next_pod_logs = next_rotation;
  reconciler.AfterEachPass([&] {
    supervisor.Step();
    auto now = std::chrono::steady_clock::now();
    if (pod_logs && now >= next_pod_logs) {
      pod_logs->Collect();
      next_pod_logs = now + std::chrono::seconds(2);
    }
    if (now >= next_rotation) {
      logs.RotateLarge();
      next_rotation = now + std::chrono::seconds(10);
    }
    if (now >= next_prune) {
      if (auto keep = ProjectsInUse(**store, flags.data_dir)) {
        if (int removed = bundles.Prune(*keep, 3600); removed > 0) {
          Log("operator", absl::StrCat("removed ", removed, " unused projects"));
        }
      }
      if (auto in_use = ModelsInUse(flags.data_dir)) {
        int removed = models::ModelCache::Prune(fs::path(flags.data_dir) / "models", *in_use, 3600);
        if (removed > 0) {
          Log("operator", absl::StrCat("removed ", removed, " unused model versions"));
        }
      }
      next_prune = now + std::chrono::minutes(10);
    }
  });

  op::Autoscaling autoscaling(
      [&]() -> std::vector<op::AutoscaleTarget> {
        auto apis = specs.List(**store);
        if (!apis.ok()) return {};
        return op::AutoscaleTargets(*apis, *reconciler.observed());
      },
      [&deploys](const std::string& api, const std::string& api_id, int from, int to) {
        deploys.SetDesiredReplicas(api, api_id, from, to);
      },
      flags.autoscaler_tick_ms);

  asio::io_context io;
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_replicas{false};
  op::OperatorServerOptions server_options;
  server_options.host = flags.host;
  server_options.port = static_cast<uint16_t>(flags.port);
  server_options.token = token;
  server_options.limits = limits;
  server_options.on_shutdown = [&] {
    stop_replicas = true;
    io.stop();
  };
  server_options.metrics_text = [&autoscaling] { return autoscaling.MetricsText(); };
  auto server = op::OperatorServer::Create(
      io, server_options,
      {deploys, views, reconciler, bundles, **store, specs, &jobs, &leases, &**job_queue});
  if (!server.ok()) {
    std::cerr << "operator: " << server.status().message() << "\n";
    return 1;
  }
  reconciler.OnRoutesChanged([s = server->get()] { s->NotifyRoutesChanged(); });
  (*server)->Start();
  Log("operator", absl::StrCat("listening on ", flags.host, ":", (*server)->port(), ", data in ",
                               flags.data_dir));
  std::thread control_loop([&] { reconciler.Run(stop); });
  std::thread autoscaling_loop([&] { autoscaling.Run(stop); });
  views.EnableAutoscaling(&autoscaling);
  std::thread traffic_loop([&] {  // the dashboard's history: the gateway's counters every 2 s
    while (!stop) {
      auto next = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      views.SampleTraffic(UnixNanos() / 1'000'000);
      while (!stop && std::chrono::steady_clock::now() < next) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  stop = true;
  control_loop.join();
  autoscaling_loop.join();
  traffic_loop.join();
  (*server)->Stop();
  if (stop_replicas) {
    Log("operator", "stopping every replica (cluster down)");
    reconciler.StopAll();
  }
  Log("operator", "stopped");
  return 0;
}

namespace {

// $CORTEX_GATEWAY_THREADS, or (unset or 0) the CPUs this process may run on (taskset, cpusets),
// at most 4.
absl::StatusOr<int> GatewayThreads() {
  int threads = 0;
  if (const char* env = std::getenv("CORTEX_GATEWAY_THREADS"); env != nullptr) {
    if (!absl::SimpleAtoi(env, &threads) || threads < 0 || threads > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("CORTEX_GATEWAY_THREADS must be a number from 0 to 64, not ", env));
    }
  }
  if (threads > 0) return threads;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int usable = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0
                   ? CPU_COUNT(&cpus)
                   : static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(usable, 1, 4);
}

}  // namespace

int RunGateway(const GatewayRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  // Before the event-loop threads start: they inherit it.
  if (absl::Status s = UseBatchScheduling(); !s.ok()) Log("gateway", s.ToString());
  std::string token = ReadToken(flags.token_file);
  auto cluster = config::ClusterConfig::Load(flags.cluster_config);
  if (!cluster.ok()) {
    std::cerr << "gateway: " << cluster.status().message() << "\n";
    return 1;
  }
  gateway::GatewayOptions options;
  options.api_gateway_body_limit = cluster->limits.api_gateway_body_bytes;
  options.load_balancer_body_limit = cluster->limits.load_balancer_body_bytes;
  options.header_limit = cluster->limits.header_bytes;
  options.host = flags.host;
  options.port = static_cast<uint16_t>(flags.port);
  options.lb_port = static_cast<uint16_t>(flags.lb_port);
  options.api_gateway_timeout_ms = flags.timeout_ms;
  {  // http://host:port of the operator, for BatchAPI job requests
    std::string rest = flags.operator_url.substr(flags.operator_url.find("//") + 2);
    size_t colon = rest.rfind(':');
    options.operator_host = rest.substr(0, colon);
    options.operator_port = static_cast<uint16_t>(std::atoi(rest.substr(colon + 1).c_str()));
  }
  // One gateway per thread, each on its own io_context, sharing the two ports (SO_REUSEPORT:
  // the kernel spreads connections) and the request counts.
  auto thread_count = GatewayThreads();
  if (!thread_count.ok()) {
    std::cerr << "gateway: " << thread_count.status().message() << "\n";
    return 1;
  }
  int threads = *thread_count;
  options.reuse_port = threads > 1;
  auto stats = std::make_shared<gateway::RequestStats>();
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<gateway::Gateway>> gateways;
  for (int i = 0; i < threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    auto gw = gateway::Gateway::Create(*contexts.back(), options, stats);
    if (!gw.ok()) {
      std::cerr << "gateway: " << gw.status().message() << "\n";
      return 1;
    }
    if (i == 0) {  // the others listen on the ports the first one got
      options.port = (*gw)->port();
      options.lb_port = (*gw)->lb_port();
    }
    gateways.push_back(std::move(*gw));
  }
  for (auto& gw : gateways) gw->Start();
  Log("gateway", absl::StrCat("api gateway listening on ", flags.host, ":", options.port,
                              " (timeout ", flags.timeout_ms, " ms), load balancer on ", flags.host,
                              ":", options.lb_port, ", ", threads, " thread(s)"));
  std::atomic<bool> stop{false};
  gateway::RouteWatcher watcher(flags.operator_url, token, [&](auto table) {
    for (size_t i = 0; i < gateways.size(); ++i) {
      asio::post(*contexts[i], [g = gateways[i].get(), table] { g->SetRoutes(table); });
    }
  });
  std::thread watching([&] { watcher.Run(stop); });
  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) {
    for (auto& io : contexts) io->stop();
  });
  std::vector<std::thread> serving;
  for (size_t i = 1; i < contexts.size(); ++i) {
    serving.emplace_back([io = contexts[i].get()] {
      auto work = asio::make_work_guard(*io);  // idle until stopped
      io->run();
    });
  }
  contexts[0]->run();
  for (auto& t : serving) t.join();
  stop = true;
  watching.join();
  Log("gateway", "stopped");
  return 0;
}

int RunReplica(const ReplicaRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  // The front, and the worker processes it starts.
  if (absl::Status s = UseBatchScheduling(); !s.ok()) Log("replica", s.ToString());
  auto spec_text = ReadFile(flags.spec);
  if (!spec_text.ok()) {
    std::cerr << "replica: " << spec_text.status().message() << "\n";
    return 1;
  }
  replica::FrontOptions options;
  options.replica_id = flags.id;
  options.spec_path = flags.spec;
  nlohmann::json spec = nlohmann::json::parse(*spec_text, nullptr, false);
  auto api =
      spec.is_object()
          ? config::ApiConfig::FromJson(spec)
          : absl::StatusOr<config::ApiConfig>(absl::InvalidArgumentError("not a JSON object"));
  if (!api.ok() || !api->predictor) {
    std::cerr << "replica: " << flags.spec << " is not a valid replica spec"
              << (api.ok() ? "" : ": " + std::string(api.status().message())) << "\n";
    return 1;
  }
  options.api = std::move(*api);
  options.project_dir = StringField(spec, "project_dir");
  options.models_manifest = StringField(spec, "models_manifest");
  options.host = flags.host;
  options.port = static_cast<uint16_t>(flags.port);
  options.port_file = flags.port_file;
  options.unix_socket = flags.unix_socket;
  options.python = flags.python;
  options.max_log_line_bytes = static_cast<size_t>(flags.max_log_line);
  options.runtime_dir = flags.runtime_dir.empty() ? DefaultRuntimeDir() : flags.runtime_dir;
  options.socket_dir =
      flags.socket_dir.empty() ? fs::temp_directory_path().string() : flags.socket_dir;
  // A predictor's child that leaves the process group (a new session, a daemon) is still ours:
  // adopted when orphaned, stopped with the replica.
  AdoptOrphans();
  // The dependency files, before anything listens: until the port file is written the operator
  // sees a replica that is starting (the API stays "updating"); a failure fails the replica.
  if (!options.project_dir.empty()) {
    auto python = replica::SetUpProject(
        SetupOptions(flags.id, options.project_dir, options.python, flags.data_dir));
    if (!python.ok()) {
      WriteLine(absl::StrCat("replica ", flags.id, ": ", python.status().message(),
                             "; failed to start api"));
      return 1;
    }
    options.python = *python;
  }
  // Every model version is on disk before a worker starts (spec §5); then they are polled.
  auto models = SyncModels(spec, *options.api.predictor, options.project_dir, flags.id);
  if (!models.ok()) {
    WriteLine(absl::StrCat("replica ", flags.id, ": ", models.status().message(),
                           "; failed to start api"));
    return 1;
  }
  if (*models) (*models)->syncer->Start(models::ModelPollInterval());
  asio::io_context io(1);
  auto front = replica::Front::Create(io, options);
  if (!front.ok()) {
    std::cerr << "replica: " << front.status().message() << "\n";
    return 1;
  }
  if (absl::Status st = (*front)->Start(); !st.ok()) {
    std::cerr << "replica: " << st.message() << "\n";
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto ec, int) {
    if (ec) return;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await (*front)->Shutdown(10'000);
          io.stop();
        },
        asio::detached);
  });
  io.run();
  StopDescendants(2000);
  return (*front)->failed() ? 1 : 0;
}

int RunWorkerSetup(const WorkerSetupRoleFlags& flags) {
  auto python = replica::SetUpProject(SetupOptions(
      flags.id.empty() ? "worker" : flags.id, flags.project_dir, flags.python, flags.data_dir));
  if (!python.ok()) {
    WriteLine(absl::StrCat("worker ", flags.id, ": ", python.status().message(),
                           "; the worker cannot start"));
    return 1;
  }
  // A BatchAPI's models: fetched once, as Cortex stopped reloading them after the first pass.
  if (!flags.spec.empty()) {
    absl::Status synced = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string text, ReadFile(flags.spec));
      nlohmann::json spec = nlohmann::json::parse(text, nullptr, false);
      ASSIGN_OR_RETURN(config::ApiConfig api, config::ApiConfig::FromJson(spec));
      if (!api.predictor) return absl::OkStatus();
      return SyncModels(spec, *api.predictor, flags.project_dir, flags.id).status();
    }();
    if (!synced.ok()) {
      WriteLine(
          absl::StrCat("worker ", flags.id, ": ", synced.message(), "; the worker cannot start"));
      return 1;
    }
  }
  std::vector<std::string> args = {*python};
  args.insert(args.end(), flags.args.begin(), flags.args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  WriteLine(absl::StrCat("worker ", flags.id, ": starting ", *python, ": ", std::strerror(errno)));
  return 127;
}

}  // namespace cortex::apps
