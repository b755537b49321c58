// The operator's REST API (bearer-token auth; only /healthz is open) over HttpServer.
// Single-threaded on its io_context, except NotifyRoutesChanged(), which any thread may call.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>
#include <vector>

#include "net/asio.h"
#include "net/http_server.h"
#include "operator/operator.h"

namespace cortex::op {

struct OperatorServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string token;
  std::function<void()> on_shutdown;          // POST /v1/shutdown (cluster down)
  std::function<std::string()> metrics_text;  // GET /metrics (Prometheus text)
};

class OperatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<OperatorServer>> Create(net::asio::io_context& io,
                                                                OperatorServerOptions options,
                                                                Operator& op);
  void Start() { server_->Start(); }
  void Stop() { server_->Stop(); }
  uint16_t port() const { return server_->port(); }
  // Wakes the gateways waiting on GET /v1/routes. Thread-safe.
  void NotifyRoutesChanged();

 private:
  OperatorServer(net::asio::io_context& io, OperatorServerOptions options, Operator& op)
      : io_(io), options_(std::move(options)), op_(op) {}
  net::asio::awaitable<net::Response> Handle(net::Request& request);
  net::asio::awaitable<net::Response> WatchRoutes(net::Request& request, int64_t after);

  net::asio::io_context& io_;
  OperatorServerOptions options_;
  Operator& op_;
  std::unique_ptr<net::HttpServer> server_;
  std::vector<std::shared_ptr<net::asio::steady_timer>> route_waiters_;
};

}  // namespace cortex::op
