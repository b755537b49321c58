// The operator's REST API over HttpServer: the routes of rest_routes.h, bearer-token auth (only
// health and BatchAPI job endpoints are open), errors through the one status mapping.
//
// The I/O thread only parses, routes and answers what needs no waiting (health, the routes
// long poll, shutdown); every handler that touches the store, the disk, S3 or another server
// runs on the server's thread pool, so a slow probe, listing or extraction never delays another
// request. NotifyRoutesChanged() may be called from any thread.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/cluster_config.h"
#include "net/asio.h"
#include "net/http_server.h"
#include "net/router.h"
#include "operator/api_views.h"
#include "operator/bundle_store.h"
#include "operator/deploy_service.h"
#include "operator/job_service.h"
#include "operator/lease_service.h"
#include "operator/reconciler.h"
#include "operator/rest_routes.h"

namespace cortex::op {

// The services the REST API serves; the batch ones may be null (BatchAPIs disabled).
struct ControlPlane {
  DeployService& deploys;
  ApiViews& views;
  Reconciler& reconciler;
  BundleStore& bundles;
  store::StateStore& store;
  SpecCache& specs;
  JobService* jobs = nullptr;
  LeaseService* leases = nullptr;
  store::JobQueue* queue = nullptr;  // GET .../jobs/{job}/worker-spec (Kubernetes worker pods)
};

struct OperatorServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string token;
  int handler_threads = 4;
  std::function<void()> on_shutdown;          // POST /v1/shutdown (cluster down)
  std::function<std::string()> metrics_text;  // GET /metrics: more Prometheus text
  config::ClusterLimits limits;               // request bodies and headers
};

class OperatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<OperatorServer>> Create(net::asio::io_context& io,
                                                                OperatorServerOptions options,
                                                                ControlPlane plane);
  ~OperatorServer();
  void Start() { server_->Start(); }
  void Stop() { server_->Stop(); }
  uint16_t port() const { return server_->port(); }
  // Wakes the gateways waiting on GET /v1/routes. Thread-safe.
  void NotifyRoutesChanged();

 private:
  OperatorServer(net::asio::io_context& io, OperatorServerOptions options, ControlPlane plane);
  // Before the body is read: unknown endpoints, wrong methods and missing tokens are answered at
  // once, and each endpoint gets its body limit.
  std::optional<net::Response> Admit(const net::Request& head, uint64_t& body_limit) const;
  using RouteMatch = net::Router<Endpoint>::Match;
  static RouteMatch FindRoute(const net::Request& request);
  // 404 (no endpoint), 405 (its method is not taken) or 401 (no token where one is needed).
  std::optional<net::Response> Refuse(const net::Request& head, const RouteMatch& match) const;
  net::asio::awaitable<net::Response> Handle(net::Request& request);
  bool Authorized(const net::Request& request) const;
  net::asio::awaitable<net::Response> WatchRoutes(net::Request& request, int64_t after);
  // The handlers that may wait (on the pool).
  net::Response Blocking(Endpoint endpoint, net::Request& request, const net::PathParams& params,
                         bool authorized);
  // `authorized`: the caller sent the operator token (a job listing needs it; without it a job's
  // API spec leaves out predictor.env and predictor.config).
  // GET /v1/apis/{api}/replica-spec: what a replica of `predictor_id` runs (Kubernetes pods
  // fetch it at start: `cortex replica-pod`).
  absl::StatusOr<nlohmann::json> ReplicaSpec(const std::string& name,
                                             std::string_view predictor_id);
  // GET /v1/apis/{api}/jobs/{job}/worker-spec: what a batch worker pod runs (`cortex worker-pod`).
  absl::StatusOr<nlohmann::json> WorkerSpec(const std::string& name, const std::string& job_id);
  net::Response BatchJobs(net::Request& request, const std::string& api, const std::string& job,
                          bool authorized);

  net::asio::io_context& io_;
  OperatorServerOptions options_;
  ControlPlane plane_;
  net::asio::thread_pool pool_;
  std::unique_ptr<net::HttpServer> server_;
  std::vector<std::shared_ptr<net::asio::steady_timer>> route_waiters_;  // I/O thread only
};

}  // namespace cortex::op
