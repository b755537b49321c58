// The gateway: the data plane's entry. Routes each request by exact endpoint match to one of the
// API's ready replicas (least outstanding requests), over a pool of keep-alive connections, and
// counts responses and latency per API.
//
// The route table is a shared immutable snapshot replaced with SetRoutes(); the gateway keeps
// serving with the last one it got while the operator is away. Single-threaded: everything runs
// on the io_context passed to Create(); SetRoutes() must be called on that thread (post to it).
// A process runs one per thread on shared ports (reuse_port) and shared RequestStats; each keeps
// its own connection pools and outstanding counts, as each nginx worker does.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/request_stats.h"
#include "gateway/route_table.h"
#include "net/asio.h"
#include "net/http_server.h"

namespace cortex::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;     // the API gateway listener (request timeout, public APIs only)
  uint16_t lb_port = 0;  // the load balancer listener (no timeout, every API)
  int api_gateway_timeout_ms = 29'000;
  std::string operator_host = "127.0.0.1";  // BatchAPI job requests are forwarded here
  uint16_t operator_port = 0;
  int upstream_connect_timeout_ms = 2000;
  size_t max_idle_per_replica = 256;
  uint64_t api_gateway_body_limit = 32ull << 20;  // request bodies, per listener
  uint64_t load_balancer_body_limit = 512ull << 20;
  uint32_t header_limit = 64 << 10;
  // SO_REUSEPORT on both listeners: several gateways (one per thread) share the ports and the
  // kernel spreads the connections between them.
  bool reuse_port = false;
};

class Gateway {
 public:
  // `stats` may be shared with the other gateways of the process (null: one of its own).
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(
      net::asio::io_context& io, const GatewayOptions& options,
      std::shared_ptr<RequestStats> stats = nullptr);
  ~Gateway();

  void Start();
  void Stop();
  uint16_t port() const { return server_->port(); }
  uint16_t lb_port() const { return lb_server_->port(); }
  void SetRoutes(std::shared_ptr<const RouteTable> routes);
  int64_t routes_version() const { return routes_->version(); }

 private:
  struct Upstream;
  using Stream = net::Stream;

  // Cortex's two ways in: the API gateway (a request timeout; APIs with api_gateway: none are
  // not there) and the load balancer (no timeout).
  enum class Listener { kApiGateway, kLoadBalancer };

  // Where a request goes: an API (or a splitter) and, for a BatchAPI job, "/<job_id>". An Open
  // Inference Protocol request (/v2/models/<api>[.<model>]/...) keeps its path upstream.
  struct Destination {
    const ApiRoute* api = nullptr;
    std::string job_suffix;
    bool v2 = false;
  };

  Gateway(net::asio::io_context& io, GatewayOptions options, std::shared_ptr<RequestStats> stats);
  static Destination Resolve(const RouteTable& routes, std::string_view path, Listener listener);
  static bool IsOwnEndpoint(std::string_view path);
  // The Open Inference Protocol's server endpoints (/v2, /v2/health/live|ready), or nullopt.
  std::optional<net::Response> V2ServerEndpoint(const net::Request& request) const;
  // Before the body is read: a request for no API is answered 404 at once.
  std::optional<net::Response> Admit(const net::Request& head, Listener listener) const;
  net::asio::awaitable<net::Response> Handle(net::Request& request, net::ClientWatch& client,
                                             Listener listener);
  // Sends the request to one of `api`'s ready replicas; `timeout_ms` 0 waits as long as it takes.
  // `upstream_path` replaces the request's path ("/predict" for replicas). The client's request
  // keeps its own headers (Connection: close is honoured); its body moves to the upstream copy.
  // A client that leaves meanwhile closes the upstream connection: the replica drops the request
  // if it has not started it.
  net::asio::awaitable<net::Response> Forward(const ApiRoute& api,
                                              const std::vector<ReplicaRoute>& upstreams,
                                              const std::string& upstream_path,
                                              net::Request& request, net::ClientWatch& client,
                                              int timeout_ms);
  net::asio::awaitable<absl::StatusOr<net::Response>> Exchange(Upstream& upstream,
                                                               const net::Request& request,
                                                               net::ClientWatch& client,
                                                               int timeout_ms);
  std::shared_ptr<Upstream> UpstreamFor(const ReplicaRoute& replica);
  net::Response Metrics(const net::Request& request) const;

  net::asio::io_context& io_;
  GatewayOptions options_;
  std::unique_ptr<net::HttpServer> server_;     // API gateway listener
  std::unique_ptr<net::HttpServer> lb_server_;  // load balancer listener
  std::shared_ptr<const RouteTable> routes_;
  std::unordered_map<std::string, std::shared_ptr<Upstream>> upstreams_;  // by replica id
  std::shared_ptr<RequestStats> stats_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace cortex::gateway
