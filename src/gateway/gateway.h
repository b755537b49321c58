// The gateway: the data plane's entry. Routes each request by exact endpoint match to one of the
// API's ready replicas (least outstanding requests), over a pool of keep-alive connections, and
// counts responses and latency per API.
//
// The route table is a shared immutable snapshot replaced with SetRoutes(); the gateway keeps
// serving with the last one it got while the operator is away. Single-threaded: everything runs
// on the io_context passed to Create(); SetRoutes() must be called on that thread (post to it).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/histogram.h"
#include "gateway/route_table.h"
#include "net/asio.h"
#include "net/http_server.h"

namespace cortex::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int upstream_connect_timeout_ms = 2000;
  size_t max_idle_per_replica = 256;
};

struct ApiStats {
  int64_t code_2xx = 0, code_4xx = 0, code_5xx = 0;
  LatencyHistogram latency;
};

class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(net::asio::io_context& io,
                                                         const GatewayOptions& options);
  ~Gateway();

  void Start();
  void Stop();
  uint16_t port() const { return server_->port(); }
  void SetRoutes(std::shared_ptr<const RouteTable> routes);
  int64_t routes_version() const { return routes_->version(); }

 private:
  struct Upstream;
  using Stream = net::beast::tcp_stream;

  Gateway(net::asio::io_context& io, GatewayOptions options);
  net::asio::awaitable<net::Response> Handle(net::Request& request);
  net::asio::awaitable<net::Response> Forward(const ApiRoute& api, net::Request& request);
  net::asio::awaitable<absl::StatusOr<net::Response>> Exchange(Upstream& upstream,
                                                               net::Request& request);
  std::shared_ptr<Upstream> UpstreamFor(const ReplicaRoute& replica);
  void Record(const std::string& api, unsigned status, double seconds);
  net::Response Metrics(const net::Request& request) const;

  net::asio::io_context& io_;
  GatewayOptions options_;
  std::unique_ptr<net::HttpServer> server_;
  std::shared_ptr<const RouteTable> routes_;
  std::unordered_map<std::string, std::shared_ptr<Upstream>> upstreams_;  // by replica id
  std::map<std::string, ApiStats> stats_;                                 // by API name
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace cortex::gateway
