#include "apps/cortex/server_roles.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "backends/local/local_backend.h"
#include "common/process.h"
#include "common/util.h"
#include "gateway/gateway.h"
#include "net/http_client.h"
#include "operator/autoscaling.h"
#include "operator/operator.h"
#include "operator/operator_server.h"
#include "replica/front.h"
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

}  // namespace

std::string DefaultRuntimeDir() {
  if (const char* dir = std::getenv("CORTEX_PYTHON_RUNTIME_DIR"); dir && *dir) return dir;
  fs::path installed =
      fs::path(SelfExecutable()).parent_path().parent_path() / "share" / "cortex" / "python";
  if (fs::exists(installed / "cortex_runtime")) return installed.string();
  return CORTEX_SOURCE_PYTHON_DIR;
}

int RunOperator(const OperatorRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  fs::create_directories(flags.data_dir);
  std::string token = ReadToken(flags.token_file);
  if (token.empty()) {
    std::cerr << "operator: no token in " << flags.token_file << "\n";
    return 1;
  }
  auto store = store::SqliteStateStore::Open(flags.data_dir + "/state.db");
  if (!store.ok()) {
    std::cerr << "operator: " << store.status().message() << "\n";
    return 1;
  }
  backends::LocalBackendOptions backend_options;
  backend_options.data_dir = flags.data_dir;
  backend_options.executable = SelfExecutable();
  backend_options.runtime_dir = DefaultRuntimeDir();
  backend_options.host = flags.host;
  op::OperatorOptions options;
  options.data_dir = flags.data_dir;
  options.gateway_url = flags.gateway_url;
  options.lb_url = flags.lb_url;
  options.cluster_api_gateway = flags.api_gateway != "none";
  options.default_python = flags.python;
  op::Operator op(options, std::move(*store),
                  std::make_unique<backends::LocalBackend>(backend_options));
  auto job_queue = store::SqliteJobQueue::Open(flags.data_dir + "/state.db");
  if (!job_queue.ok()) {
    std::cerr << "operator: " << job_queue.status().message() << "\n";
    return 1;
  }
  op::BatchOptions batch_options;
  batch_options.data_dir = flags.data_dir;
  batch_options.operator_url = absl::StrCat("http://", flags.host, ":", flags.port);
  batch_options.token = token;
  batch_options.default_python = flags.python;
  op.EnableBatchJobs(batch_options, std::move(*job_queue));

  asio::io_context io;
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_replicas{false};
  op::OperatorServerOptions server_options;
  server_options.host = flags.host;
  server_options.port = static_cast<uint16_t>(flags.port);
  server_options.token = token;
  server_options.on_shutdown = [&] {
    stop_replicas = true;
    io.stop();
  };
  op::Autoscaling autoscaling(op, flags.autoscaler_tick_ms);
  server_options.metrics_text = [&autoscaling] { return autoscaling.MetricsText(); };
  auto server = op::OperatorServer::Create(io, server_options, op);
  if (!server.ok()) {
    std::cerr << "operator: " << server.status().message() << "\n";
    return 1;
  }
  op.OnRoutesChanged([s = server->get()] { s->NotifyRoutesChanged(); });
  (*server)->Start();
  Log("operator", absl::StrCat("listening on ", flags.host, ":", (*server)->port(), ", data in ",
                               flags.data_dir));
  std::thread control_loop([&] { op.Run(stop); });
  std::thread autoscaling_loop([&] { autoscaling.Run(stop); });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  stop = true;
  control_loop.join();
  autoscaling_loop.join();
  if (stop_replicas) {
    Log("operator", "stopping every replica (cluster down)");
    op.StopAllReplicas();
  }
  Log("operator", "stopped");
  return 0;
}

int RunGateway(const GatewayRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  std::string token = ReadToken(flags.token_file);
  asio::io_context io(1);
  gateway::GatewayOptions options;
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
  auto gw = gateway::Gateway::Create(io, options);
  if (!gw.ok()) {
    std::cerr << "gateway: " << gw.status().message() << "\n";
    return 1;
  }
  (*gw)->Start();
  Log("gateway",
      absl::StrCat("api gateway listening on ", flags.host, ":", (*gw)->port(), " (timeout ",
                   flags.timeout_ms, " ms), load balancer on ", flags.host, ":", (*gw)->lb_port()));

  // Follows the operator's route table with long polls; keeps the last table when it is away.
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    int64_t version = -1;
    bool reported_down = false;
    while (!stop.load()) {
      net::HttpCall call;
      call.url = absl::StrCat(flags.operator_url, "/v1/routes?after=", version);
      call.headers = {{"Authorization", "Bearer " + token}};
      call.timeout_ms = 30'000;
      call.connect_timeout_ms = 1000;
      auto result = net::Fetch(call);
      auto table =
          result.ok() && result->status == 200
              ? gateway::RouteTable::FromJson(nlohmann::json::parse(result->body, nullptr, false))
              : absl::StatusOr<std::shared_ptr<const gateway::RouteTable>>(absl::UnavailableError(
                    result.ok() ? result->body : std::string(result.status().message())));
      if (!table.ok()) {
        if (!reported_down) {
          Log("gateway", absl::StrCat("cannot reach the operator (", table.status().message(),
                                      "); serving with the last route table"));
          reported_down = true;
        }
        for (int i = 0; i < 10 && !stop.load(); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      reported_down = false;
      if ((*table)->version() != version) {
        version = (*table)->version();
        asio::post(io, [g = gw->get(), t = *table] { g->SetRoutes(t); });
      }
    }
  });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  stop = true;
  watcher.join();
  Log("gateway", "stopped");
  return 0;
}

int RunReplica(const ReplicaRoleFlags& flags) {
  ::signal(SIGPIPE, SIG_IGN);
  auto spec_text = ReadFile(flags.spec);
  if (!spec_text.ok()) {
    std::cerr << "replica: " << spec_text.status().message() << "\n";
    return 1;
  }
  replica::FrontOptions options;
  options.replica_id = flags.id;
  options.spec_path = flags.spec;
  options.spec = nlohmann::json::parse(*spec_text, nullptr, false);
  if (options.spec.is_discarded() || !options.spec.contains("predictor")) {
    std::cerr << "replica: " << flags.spec << " is not a valid replica spec\n";
    return 1;
  }
  options.host = flags.host;
  options.port = static_cast<uint16_t>(flags.port);
  options.port_file = flags.port_file;
  options.python = flags.python;
  options.runtime_dir = flags.runtime_dir.empty() ? DefaultRuntimeDir() : flags.runtime_dir;
  options.socket_dir =
      flags.socket_dir.empty() ? fs::temp_directory_path().string() : flags.socket_dir;
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
  return (*front)->failed() ? 1 : 0;
}

}  // namespace cortex::apps
