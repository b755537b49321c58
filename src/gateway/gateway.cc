#include "gateway/gateway.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/util.h"
#include "net/eager_io.h"

namespace cortex::gateway {

namespace asio = net::asio;
namespace beast = net::beast;
namespace http = net::http;
using net::tcp;

struct Gateway::Upstream {
  ReplicaRoute route;
  int64_t outstanding = 0;
  // Pooled keep-alive connections and when each was last used (the front closes a connection
  // idle for 75 s, so older ones are not reused).
  std::vector<std::pair<std::unique_ptr<Stream>, std::chrono::steady_clock::time_point>> idle;
  bool removed = false;
  bool tcp_only = false;  // its Unix socket refused a connection: TCP from then on
};

Gateway::Gateway(asio::io_context& io, GatewayOptions options, std::shared_ptr<RequestStats> stats)
    : io_(io), options_(std::move(options)), stats_(std::move(stats)) {
  if (!stats_) stats_ = std::make_shared<RequestStats>();
  routes_ = *RouteTable::FromJson(nlohmann::json::object());
}

Gateway::~Gateway() = default;

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(asio::io_context& io,
                                                         const GatewayOptions& options,
                                                         std::shared_ptr<RequestStats> stats) {
  std::unique_ptr<Gateway> gateway(new Gateway(io, options, std::move(stats)));
  net::HttpServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.body_limit = options.api_gateway_body_limit;
  server_options.header_limit = options.header_limit;
  server_options.reuse_port = options.reuse_port;
  Gateway* self = gateway.get();
  server_options.admit = [self](const net::Request& head, uint64_t&) {
    return self->Admit(head, Listener::kApiGateway);
  };
  auto server = net::HttpServer::Create(
      io, server_options, [self](net::Request& request, net::ClientWatch& client) {
        return self->Handle(request, client, Listener::kApiGateway);
      });
  if (!server.ok()) return server.status();
  gateway->server_ = std::move(*server);
  server_options.port = options.lb_port;
  server_options.body_limit = options.load_balancer_body_limit;
  server_options.admit = [self](const net::Request& head, uint64_t&) {
    return self->Admit(head, Listener::kLoadBalancer);
  };
  auto lb_server = net::HttpServer::Create(
      io, server_options, [self](net::Request& request, net::ClientWatch& client) {
        return self->Handle(request, client, Listener::kLoadBalancer);
      });
  if (!lb_server.ok()) return lb_server.status();
  gateway->lb_server_ = std::move(*lb_server);
  return gateway;
}

void Gateway::Start() {
  server_->Start();
  lb_server_->Start();
}

void Gateway::Stop() {
  server_->Stop();
  lb_server_->Stop();
}

void Gateway::SetRoutes(std::shared_ptr<const RouteTable> routes) {
  routes_ = std::move(routes);
  // Forget upstreams that left the table; requests in flight keep theirs alive until done.
  std::unordered_map<std::string, bool> live;
  for (const auto& api : routes_->apis()) {
    for (const auto& r : api.replicas) live[r.id] = true;
  }
  live["operator"] = true;  // BatchAPI requests
  stats_->Retain(*routes_);
  for (auto it = upstreams_.begin(); it != upstreams_.end();) {
    if (live.count(it->first) == 0) {
      it->second->removed = true;
      it->second->idle.clear();
      it = upstreams_.erase(it);
    } else {
      ++it;
    }
  }
}

std::shared_ptr<Gateway::Upstream> Gateway::UpstreamFor(const ReplicaRoute& replica) {
  auto& slot = upstreams_[replica.id];
  if (!slot || slot->route != replica) {
    slot = std::make_shared<Upstream>();
    slot->route = replica;
  }
  return slot;
}

namespace {

net::Response NotFound(const net::Request& request, std::string_view path) {
  return net::StatusResponse(request, absl::NotFoundError(absl::StrCat(
                                          "no api is deployed at endpoint ", std::string(path))));
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

Gateway::Destination Gateway::Resolve(const RouteTable& routes, std::string_view path,
                                      Listener listener) {
  Destination to{routes.Find(path), ""};
  if (to.api == nullptr) {  // BatchAPI: "<endpoint>/<job_id>" addresses one job
    size_t slash = path.rfind('/');
    const ApiRoute* parent = slash > 0 ? routes.Find(path.substr(0, slash)) : nullptr;
    if (parent != nullptr && parent->batch) to = {parent, std::string(path.substr(slash))};
  }
  constexpr std::string_view kV2Models = "/v2/models/";
  if (to.api == nullptr && path.starts_with(kV2Models)) {
    std::string_view name = path.substr(kV2Models.size());
    name = name.substr(0, name.find('/'));
    name = name.substr(0, name.find('.'));  // <api>.<model> names one model of the API
    const ApiRoute* api = routes.FindByName(std::string(name));
    if (api != nullptr && !api->batch) to = {api, "", true};
  }
  if (to.api != nullptr && listener == Listener::kApiGateway && to.api->api_gateway == "none") {
    to = {};  // served on the load balancer only
  }
  return to;
}

bool Gateway::IsOwnEndpoint(std::string_view path) {
  return path.starts_with("/_cortex/") || path == "/metrics" || path == "/v2" ||
         path == "/v2/health/live" || path == "/v2/health/ready";
}

std::optional<net::Response> Gateway::V2ServerEndpoint(const net::Request& request) const {
  std::string_view path = PathOf(request.target());
  if (path == "/v2") {
    return net::MakeResponse(request, http::status::ok, V2ServerMetadata());
  }
  // The gateway is live while it answers, and ready once it has routes from the operator; each
  // model's readiness is /v2/models/<api>/ready.
  if (path == "/v2/health/live") {
    return net::MakeResponse(request, http::status::ok, R"({"live":true})");
  }
  if (path == "/v2/health/ready") {
    bool ready = routes_->version() > 0;
    return net::MakeResponse(request, ready ? http::status::ok : http::status::service_unavailable,
                             nlohmann::json{{"ready", ready}}.dump());
  }
  return std::nullopt;
}

std::optional<net::Response> Gateway::Admit(const net::Request& head, Listener listener) const {
  std::string_view path = PathOf(head.target());
  if (IsOwnEndpoint(path) || Resolve(*routes_, path, listener).api != nullptr) return std::nullopt;
  return NotFound(head, path);
}

asio::awaitable<net::Response> Gateway::Handle(net::Request& request, net::ClientWatch& client,
                                               Listener listener) {
  std::string_view path = PathOf(request.target());
  std::shared_ptr<const RouteTable> routes = routes_;  // this request's snapshot
  // The gateway's own endpoints come first: no API can shadow them (/_cortex is reserved).
  if (path == "/_cortex/healthz") {
    co_return net::MakeResponse(
        request, http::status::ok,
        nlohmann::json{{"routes_version", routes->version()}, {"pid", ::getpid()}}.dump());
  }
  if (path == "/_cortex/stats") {
    co_return net::MakeResponse(request, http::status::ok, stats_->ToJson().dump());
  }
  if (path == "/_cortex/metrics") co_return Metrics(request);
  auto [api, job_suffix, v2] = Resolve(*routes, path, listener);
  if (api != nullptr) {
    auto started = std::chrono::steady_clock::now();
    bool predict = request.method() == net::http::verb::post;
    const ApiRoute* destination = api;
    if (api->is_splitter()) {
      std::vector<int> weights;
      for (const auto& t : api->targets) weights.push_back(t.weight);
      const SplitTarget& chosen = api->targets[PickWeighted(weights, rng_)];
      destination = routes->FindByName(chosen.api);
      if (destination == nullptr || destination->is_splitter()) {
        co_return net::StatusResponse(
            request, absl::UnavailableError(absl::StrCat("no healthy upstream: api ", chosen.api,
                                                         " of traffic splitter ", api->name,
                                                         " is not deployed")));
      }
    }
    int timeout_ms = listener == Listener::kApiGateway ? options_.api_gateway_timeout_ms : 0;
    if (api->batch) {  // job submissions and queries are the operator's (spec §11)
      std::vector<ReplicaRoute> operator_route = {
          {"operator", options_.operator_host, options_.operator_port}};
      co_return co_await Forward(*api, operator_route,
                                 absl::StrCat("/v1/batch/", api->name, job_suffix), request, client,
                                 timeout_ms);
    }
    // Not a conditional inside the co_await: GCC 12 destroys such temporaries twice.
    std::string upstream_path = v2 ? std::string(path) : std::string("/predict");
    net::Response response = co_await Forward(*destination, destination->replicas, upstream_path,
                                              request, client, timeout_ms);
    if (predict) {  // as Cortex: request metrics count predictions (POST) only
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      stats_->Record(*destination, response.result_int(), seconds);
      if (destination != api) stats_->Record(*api, response.result_int(), seconds);
    }
    co_return response;
  }
  if (path == "/metrics") co_return Metrics(request);
  if (auto v2_endpoint = V2ServerEndpoint(request)) co_return *std::move(v2_endpoint);
  co_return NotFound(request, path);
}

asio::awaitable<net::Response> Gateway::Forward(const ApiRoute& api,
                                                const std::vector<ReplicaRoute>& upstreams,
                                                const std::string& upstream_path,
                                                net::Request& request, net::ClientWatch& client,
                                                int timeout_ms) {
  // Keep what the request needs: the route snapshot may be replaced while we await.
  std::vector<ReplicaRoute> candidates = upstreams;
  std::string api_name = api.name;
  std::string_view target = request.target();
  size_t q = target.find('?');
  // The upstream request is a copy of the head (the client's Connection header must decide the
  // client connection, not the pooled one) that takes over the body.
  net::Request upstream_request(request.base(), std::move(request.body()));
  upstream_request.target(q == std::string_view::npos
                              ? upstream_path
                              : absl::StrCat(upstream_path, std::string(target.substr(q))));
  upstream_request.keep_alive(true);
  upstream_request.erase(http::field::expect);  // the body is here already: no 100 Continue
  upstream_request.prepare_payload();
  for (int attempt = 0; attempt < 2 && !candidates.empty(); ++attempt) {
    std::vector<int64_t> load;
    std::vector<std::shared_ptr<Upstream>> ups;
    for (const auto& r : candidates) {
      ups.push_back(UpstreamFor(r));
      load.push_back(ups.back()->outstanding);
    }
    size_t pick = PickLeastOutstanding(load, rng_);
    std::shared_ptr<Upstream> upstream = ups[pick];
    ++upstream->outstanding;
    auto result = co_await Exchange(*upstream, upstream_request, client, timeout_ms);
    --upstream->outstanding;
    if (client.gone()) {  // no one reads this; 499 as nginx logs it
      co_return net::StatusResponse(
          request, WithHttpStatus(absl::CancelledError("the client closed the connection"), 499));
    }
    if (result.ok()) {
      net::Response response = std::move(*result);
      response.keep_alive(request.keep_alive());
      co_return response;
    }
    if (result.status().code() == absl::StatusCode::kDeadlineExceeded) {
      // The replica has the request: never send it twice. Its late answer is dropped.
      co_return net::StatusResponse(
          request, absl::DeadlineExceededError(absl::StrCat(
                       "api ", api_name, " did not answer within ", timeout_ms / 1000.0,
                       " s (the API gateway's request timeout); long requests can use the load "
                       "balancer endpoint, which has no timeout")));
    }
    if (result.status().code() == absl::StatusCode::kAborted) {
      co_return net::StatusResponse(
          request, WithHttpStatus(absl::UnavailableError(absl::StrCat(
                                      "api ", api_name,
                                      ": the replica closed the connection without answering")),
                                  502));
    }
    // The replica could not be reached (the request was not sent): try another one once.
    candidates.erase(candidates.begin() + static_cast<long>(pick));
  }
  if (upstreams.empty()) {
    co_return net::StatusResponse(
        request, absl::UnavailableError(absl::StrCat("no healthy upstream: api ", api_name,
                                                     " has no ready replicas")));
  }
  co_return net::StatusResponse(
      request, WithHttpStatus(absl::UnavailableError(
                                  absl::StrCat("api ", api_name, ": replica could not be reached")),
                              502));
}

asio::awaitable<absl::StatusOr<net::Response>> Gateway::Exchange(Upstream& upstream,
                                                                 const net::Request& request,
                                                                 net::ClientWatch& client,
                                                                 int timeout_ms) {
  constexpr auto kMaxIdle = std::chrono::seconds(50);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Stream> stream;
    bool reused = false;
    while (!upstream.idle.empty() && !stream) {
      auto [pooled, since] = std::move(upstream.idle.back());
      upstream.idle.pop_back();
      if (std::chrono::steady_clock::now() - since < kMaxIdle) stream = std::move(pooled);
    }
    if (stream) {
      reused = true;
    } else {
      stream = std::make_unique<Stream>(io_);
      stream->expires_after(std::chrono::milliseconds(options_.upstream_connect_timeout_ms));
      boost::system::error_code ec;
      bool connected = false;
      if (!upstream.route.unix_socket.empty() && !upstream.tcp_only) {
        // Unix socket first; a replica without one (started by an older version, say) is
        // reached over TCP: nothing was sent yet.
        if (auto unix_endpoint = net::UnixEndpoint(upstream.route.unix_socket);
            unix_endpoint.ok()) {
          co_await stream->async_connect(*unix_endpoint,
                                         asio::redirect_error(asio::use_awaitable, ec));
          connected = !ec;
        }
        if (!connected) {
          upstream.tcp_only = true;
          stream = std::make_unique<Stream>(io_);
          stream->expires_after(std::chrono::milliseconds(options_.upstream_connect_timeout_ms));
        }
      }
      if (!connected) {
        auto address = asio::ip::make_address(upstream.route.host, ec);
        if (ec) co_return absl::InvalidArgumentError("bad upstream address");
        co_await stream->async_connect(tcp::endpoint(address, upstream.route.port),
                                       asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return absl::UnavailableError(ec.message());
        stream->socket().set_option(tcp::no_delay(true), ec);
      }
    }
    if (timeout_ms > 0) {
      stream->expires_after(std::chrono::milliseconds(timeout_ms));
    } else {
      stream->expires_never();
    }
    if (client.gone()) co_return absl::CancelledError("the client left");
    // The client leaving closes this connection: the replica sees it and drops the request if
    // it is still queued there.
    client.OnGone([s = stream.get()] {
      boost::system::error_code ignored;
      s->socket().shutdown(net::stream_protocol::socket::shutdown_both, ignored);
    });
    boost::system::error_code ec;
    co_await net::EagerWrite(*stream, request, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1024ull * 1024 * 1024);
    if (!ec) {
      co_await http::async_read(*stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    client.OnGone(nullptr);
    if (client.gone()) co_return absl::CancelledError("the client left");
    if (ec == beast::error::timeout) co_return absl::DeadlineExceededError("timed out");
    if (ec) {
      if (reused && !parser.got_some()) {
        // A pooled connection the replica had closed: the others are likely stale too. Retry
        // on a fresh connection.
        upstream.idle.clear();
        continue;
      }
      // The replica had the request and gave no answer: it must not be sent anywhere else.
      co_return absl::AbortedError(ec.message());
    }
    net::Response response = parser.release();
    if (response.keep_alive() && !upstream.removed &&
        upstream.idle.size() < options_.max_idle_per_replica) {
      upstream.idle.emplace_back(std::move(stream), std::chrono::steady_clock::now());
    }
    co_return response;
  }
  co_return absl::UnavailableError("upstream closed the connection");
}

net::Response Gateway::Metrics(const net::Request& request) const {
  return net::MakeResponse(request, http::status::ok, stats_->Prometheus(),
                           "text/plain; version=0.0.4");
}

}  // namespace cortex::gateway
