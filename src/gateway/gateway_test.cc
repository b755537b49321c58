// The gateway's forwarding rules against real loopback sockets: fake replicas are small servers
// started by the test (net::HttpServer, or a raw acceptor that misbehaves on purpose).
#include "gateway/gateway.h"

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace cortex::gateway {
namespace {

namespace asio = net::asio;
namespace beast = net::beast;
namespace http = net::http;
using net::tcp;

// A replica that answers every request with 200 "ok" (optionally after a delay).
struct FakeReplica {
  std::unique_ptr<net::HttpServer> server;
  int requests = 0;
  int delay_ms = 0;

  FakeReplica(asio::io_context& io, int delay = 0, std::string unix_path = "") : delay_ms(delay) {
    net::HttpServerOptions options;
    options.unix_path = std::move(unix_path);
    auto created = net::HttpServer::Create(
        io, options, [this, &io](net::Request& request) -> asio::awaitable<net::Response> {
          ++requests;
          if (delay_ms > 0) {
            asio::steady_timer timer(io, std::chrono::milliseconds(delay_ms));
            co_await timer.async_wait(asio::use_awaitable);
          }
          co_return net::MakeResponse(request, http::status::ok, R"({"ok":true})");
        });
    EXPECT_TRUE(created.ok()) << created.status();
    server = std::move(*created);
    server->Start();
  }
  uint16_t port() const { return server->port(); }
};

// A replica that reads the request and closes the connection without answering.
struct ClosingReplica {
  tcp::acceptor acceptor;
  int requests = 0;

  explicit ClosingReplica(asio::io_context& io)
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, Accept(), asio::detached);
  }
  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      char buffer[4096];
      size_t n = co_await socket.async_read_some(asio::buffer(buffer),
                                                 asio::redirect_error(asio::use_awaitable, ec));
      if (n > 0) ++requests;
      socket.close();
    }
  }
  uint16_t port() const { return acceptor.local_endpoint().port(); }
};

// A port with nothing listening on it (bound, then closed).
uint16_t DeadPort(asio::io_context& io) {
  tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return probe.local_endpoint().port();
}

struct ClientResult {
  net::Response response;
  bool closed_after = false;  // Connection: close sent: the gateway closed the connection after
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GatewayOptions options;
    options.api_gateway_timeout_ms = 300;
    auto gw = Gateway::Create(io_, options);
    ASSERT_TRUE(gw.ok()) << gw.status();
    gateway_ = std::move(*gw);
    gateway_->Start();
  }

  void Route(std::vector<ReplicaRoute> replicas, const std::string& metrics_key = "p1-d1") {
    ApiRoute api;
    api.name = "a";
    api.endpoint = "/a";
    api.metrics_key = metrics_key;
    api.replicas = std::move(replicas);
    auto table = RouteTable::Build(++version_, {api});
    ASSERT_TRUE(table.ok()) << table.status();
    gateway_->SetRoutes(*table);
  }

  // Connects a client to the API gateway listener and runs `talk` on the connection, running
  // the io_context until it is done.
  void RunClient(const std::function<asio::awaitable<void>(beast::tcp_stream&)>& talk) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          beast::tcp_stream stream(io_);
          stream.expires_after(std::chrono::seconds(5));
          co_await stream.async_connect(
              tcp::endpoint(asio::ip::make_address("127.0.0.1"), gateway_->port()),
              asio::use_awaitable);
          co_await talk(stream);
        },
        [&](std::exception_ptr e) {
          done = true;
          if (e) ADD_FAILURE() << "client failed";
        });
    io_.restart();
    while (!done) io_.run_one();
  }

  // Sends one request and reads the answer (and whether the connection is closed after it).
  ClientResult Send(http::verb method, const std::string& target, bool keep_alive = true) {
    ClientResult out;
    RunClient([&](beast::tcp_stream& stream) -> asio::awaitable<void> {
      net::Request request{method, target, 11};
      request.set(http::field::host, "127.0.0.1");
      request.keep_alive(keep_alive);
      request.body() = R"({"x":1})";
      request.prepare_payload();
      co_await http::async_write(stream, request, asio::use_awaitable);
      beast::flat_buffer buffer;
      co_await http::async_read(stream, buffer, out.response, asio::use_awaitable);
      if (!keep_alive) {  // the gateway must close: the next read ends (or times out)
        stream.expires_after(std::chrono::seconds(2));
        char byte;
        boost::system::error_code ec;
        co_await stream.async_read_some(asio::buffer(&byte, 1),
                                        asio::redirect_error(asio::use_awaitable, ec));
        out.closed_after = ec == asio::error::eof;
      }
    });
    return out;
  }

  // Writes `head` (request line and headers, no body) and returns everything the gateway sends
  // back until it closes the connection. With a `body`, the first answer is read first and the
  // body is written only if it is "100 Continue".
  std::string SendRaw(const std::string& head, const std::string& body = "") {
    std::string received;
    RunClient([&](beast::tcp_stream& stream) -> asio::awaitable<void> {
      co_await asio::async_write(stream, asio::buffer(head), asio::use_awaitable);
      char chunk[4096];
      boost::system::error_code ec;
      if (!body.empty()) {
        size_t n = co_await stream.async_read_some(asio::buffer(chunk),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        received.append(chunk, n);
        if (received.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) {
          co_await asio::async_write(stream, asio::buffer(body), asio::use_awaitable);
        }
      }
      while (!ec) {
        size_t n = co_await stream.async_read_some(asio::buffer(chunk),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        received.append(chunk, n);
      }
    });
    return received;
  }

  nlohmann::json Stats() {
    ClientResult result = Send(http::verb::get, "/_cortex/stats", false);
    return nlohmann::json::parse(result.response.body());
  }

  asio::io_context io_;
  std::unique_ptr<Gateway> gateway_;
  int64_t version_ = 0;
};

TEST_F(GatewayTest, ForwardsToTheReplicaAndKeepsTheClientConnectionAlive) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}});
  ClientResult result = Send(http::verb::post, "/a");
  EXPECT_EQ(result.response.result_int(), 200);
  EXPECT_EQ(result.response.body(), R"({"ok":true})");
  EXPECT_TRUE(result.response.keep_alive());
  EXPECT_EQ(replica.requests, 1);
}

// The gateway used to set keep-alive on the caller's own request before forwarding it, so a
// client's "Connection: close" was lost and its connection stayed open.
TEST_F(GatewayTest, HonoursConnectionCloseOnForwardedRequests) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}});
  ClientResult result = Send(http::verb::post, "/a", /*keep_alive=*/false);
  EXPECT_EQ(result.response.result_int(), 200);
  EXPECT_FALSE(result.response.keep_alive());
  EXPECT_TRUE(result.closed_after);
}

// Cortex keys request metrics by deployment: after a redeploy (a new metrics key) the counts
// start from zero; they used to survive `cortex delete` and a redeploy under the same name.
TEST_F(GatewayTest, RequestMetricsStartAfreshWithANewDeployment) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}}, "p1-d1");
  for (int i = 0; i < 3; ++i) Send(http::verb::post, "/a");
  nlohmann::json stats = Stats();
  ASSERT_TRUE(stats.contains("a"));
  EXPECT_EQ(stats["a"]["code_2xx"], 3);
  EXPECT_EQ(stats["a"]["metrics_key"], "p1-d1");

  Route({{"r1", "127.0.0.1", replica.port()}}, "p1-d2");
  EXPECT_FALSE(Stats().contains("a"));
  Send(http::verb::post, "/a");
  EXPECT_EQ(Stats()["a"]["code_2xx"], 1);

  // Deleted: the API leaves the route table and its counts go with it.
  auto empty = RouteTable::Build(++version_, {});
  gateway_->SetRoutes(*empty);
  EXPECT_FALSE(Stats().contains("a"));
}

// On one machine the gateway reaches a replica through its Unix socket, not its TCP port.
TEST_F(GatewayTest, PrefersTheReplicasUnixSocket) {
  std::string path = ::testing::TempDir() + "gateway-test-" + std::to_string(::getpid()) + ".sock";
  FakeReplica over_tcp(io_);
  FakeReplica over_unix(io_, 0, path);
  EXPECT_EQ(over_unix.port(), 0);
  Route({{"r1", "127.0.0.1", over_tcp.port(), path}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Send(http::verb::post, "/a").response.result_int(), 200);
  EXPECT_EQ(over_unix.requests, 3);
  EXPECT_EQ(over_tcp.requests, 0);
  over_unix.server->Stop();
  EXPECT_FALSE(std::filesystem::exists(path)) << "the server removes its socket when it stops";
}

// A replica whose Unix socket is not there (one started by an older version) is still reached,
// over TCP: no connection was made, so nothing was sent twice.
TEST_F(GatewayTest, FallsBackToTcpWhenTheUnixSocketIsMissing) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port(), ::testing::TempDir() + "no-such-replica.sock"}});
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Send(http::verb::post, "/a").response.result_int(), 200);
  EXPECT_EQ(replica.requests, 2);
}

TEST_F(GatewayTest, AnUnreachableReplicaIsSkippedOnce) {
  FakeReplica replica(io_);
  Route({{"dead", "127.0.0.1", DeadPort(io_)}, {"r1", "127.0.0.1", replica.port()}});
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Send(http::verb::post, "/a").response.result_int(), 200);
  }
  EXPECT_EQ(replica.requests, 4);
}

// A replica that received the request and closed without answering may have run it: the
// request is never sent to a second replica.
TEST_F(GatewayTest, ARequestAReplicaReceivedIsNeverResent) {
  ClosingReplica first(io_), second(io_);
  Route({{"r1", "127.0.0.1", first.port()}, {"r2", "127.0.0.1", second.port()}});
  ClientResult result = Send(http::verb::post, "/a");
  EXPECT_EQ(result.response.result_int(), 502);
  EXPECT_EQ(first.requests + second.requests, 1);
}

TEST_F(GatewayTest, TheApiGatewayTimeoutAnswers504WithoutResending) {
  FakeReplica slow(io_, /*delay=*/1500), other(io_);
  Route({{"slow", "127.0.0.1", slow.port()}});
  ClientResult result = Send(http::verb::post, "/a");
  EXPECT_EQ(result.response.result_int(), 504);
  EXPECT_EQ(slow.requests, 1);
  EXPECT_EQ(other.requests, 0);
}

// An API at /_cortex/healthz (accepted by older versions) took the gateway's health check: then
// `cluster info` said the gateway was down and `cluster up` killed the healthy gateway.
TEST_F(GatewayTest, ItsOwnEndpointsCannotBeShadowedByAnApi) {
  FakeReplica replica(io_);
  ApiRoute api;
  api.name = "squatter";
  api.endpoint = "/_cortex/healthz";
  api.replicas = {{"r1", "127.0.0.1", replica.port()}};
  auto table = RouteTable::Build(++version_, {api});
  ASSERT_TRUE(table.ok());
  gateway_->SetRoutes(*table);
  ClientResult health = Send(http::verb::get, "/_cortex/healthz", false);
  EXPECT_EQ(health.response.result_int(), 200);
  EXPECT_TRUE(nlohmann::json::parse(health.response.body()).contains("routes_version"));
  EXPECT_EQ(replica.requests, 0);
}

TEST_F(GatewayTest, NoReadyReplicaIs503AndAnUnknownEndpoint404) {
  Route({});
  EXPECT_EQ(Send(http::verb::post, "/a").response.result_int(), 503);
  EXPECT_EQ(Send(http::verb::post, "/nope").response.result_int(), 404);
}

// Nothing is buffered for a request that no API will take: 300 MB announced to an unknown path
// are answered 404 at once, from the header alone, and the connection is closed.
TEST_F(GatewayTest, ARequestForNoApiIsRefusedBeforeItsBodyIsRead) {
  std::string answer =
      SendRaw("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 404")) << answer;
  EXPECT_NE(answer.find("no api is deployed at endpoint /nowhere"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
}

TEST_F(GatewayTest, ABodyOverTheListenersLimitIsRefusedFromItsLength) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}});
  std::string answer = SendRaw(
      absl::StrCat("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: ", (32 << 20) + 1, "\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer;
  EXPECT_NE(answer.find("request body is larger than the limit (32 MiB)"), std::string::npos)
      << answer;
  EXPECT_EQ(replica.requests, 0);
}

TEST_F(GatewayTest, OversizedHeadersGet431) {
  std::string answer = SendRaw(
      absl::StrCat("GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(70'000, 'h'), "\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer;
  EXPECT_NE(answer.find("request header is larger than the limit (64 KiB)"), std::string::npos)
      << answer;
}

TEST_F(GatewayTest, AnOverlongUrlGets414) {
  std::string answer =
      SendRaw(absl::StrCat("GET /a?q=", std::string(70'000, 'u'), " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 414")) << answer;
  EXPECT_NE(answer.find("request URL is longer than the limit (64 KiB)"), std::string::npos)
      << answer;
  // A URL within the limit with headers beyond it is the headers' fault.
  answer = SendRaw(absl::StrCat("GET /a?q=", std::string(20'000, 'u'), " HTTP/1.1\r\nHost: x\r\n",
                                "X-Big: ", std::string(50'000, 'h'), "\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer;
}

// A refused request with no body leaves the connection open, as its answer says: a client that
// reuses it (as connection pools do) is answered on it.
TEST_F(GatewayTest, ARefusedRequestWithoutABodyKeepsTheConnection) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}});
  net::Response refused, served;
  RunClient([&](beast::tcp_stream& stream) -> asio::awaitable<void> {
    beast::flat_buffer buffer;
    for (auto* response : {&refused, &served}) {
      net::Request request{http::verb::get, response == &refused ? "/nowhere" : "/a", 11};
      request.set(http::field::host, "127.0.0.1");
      co_await http::async_write(stream, request, asio::use_awaitable);
      co_await http::async_read(stream, buffer, *response, asio::use_awaitable);
    }
  });
  EXPECT_EQ(refused.result_int(), 404);
  EXPECT_TRUE(refused.keep_alive());
  EXPECT_EQ(served.result_int(), 200);
  EXPECT_EQ(replica.requests, 1);
}

// A client that asks before it sends its body (curl does so past 1 MiB) is told to go on at
// once, instead of waiting a second for an answer that never comes.
TEST_F(GatewayTest, ExpectContinueIsAnsweredWhenTheRequestIsAdmitted) {
  FakeReplica replica(io_);
  Route({{"r1", "127.0.0.1", replica.port()}});
  std::string answer = SendRaw(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n"
      "Connection: close\r\n\r\n",
      R"({"x":1})");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")) << answer;
  EXPECT_EQ(replica.requests, 1);

  answer = SendRaw(
      "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n"
      "\r\n",
      R"({"x":1})");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 404")) << answer;
}

// A process runs one gateway per thread on shared ports (SO_REUSEPORT) with one RequestStats:
// concurrent clients on many connections are all answered, and all counted once.
TEST(GatewayThreads, GatewaysOnSharedPortsShareTheirCounts) {
  asio::io_context replica_io;
  FakeReplica replica(replica_io);
  ApiRoute api;
  api.name = "a";
  api.endpoint = "/a";
  api.metrics_key = "k";
  api.replicas = {{"r1", "127.0.0.1", replica.port()}};
  auto table = RouteTable::Build(1, {api});
  ASSERT_TRUE(table.ok());

  auto stats = std::make_shared<RequestStats>();
  GatewayOptions options;
  options.reuse_port = true;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<Gateway>> gateways;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    auto gw = Gateway::Create(*contexts.back(), options, stats);
    ASSERT_TRUE(gw.ok()) << gw.status();
    options.port = (*gw)->port();
    options.lb_port = (*gw)->lb_port();
    (*gw)->SetRoutes(*table);
    (*gw)->Start();
    gateways.push_back(std::move(*gw));
  }
  EXPECT_EQ(gateways[0]->port(), gateways[1]->port());
  std::vector<std::thread> servers;
  auto replica_work = asio::make_work_guard(replica_io);
  servers.emplace_back([&] { replica_io.run(); });
  for (auto& io : contexts) servers.emplace_back([&io] { io->run(); });

  constexpr int kClients = 16, kRequests = 10;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      asio::io_context io;
      tcp::socket socket(io);
      boost::system::error_code ec;
      socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), options.port), ec);
      if (ec) return;
      beast::flat_buffer buffer;
      for (int i = 0; i < kRequests; ++i) {
        net::Request request{http::verb::post, "/a", 11};
        request.set(http::field::host, "127.0.0.1");
        request.body() = "{}";
        request.prepare_payload();
        http::write(socket, request, ec);
        net::Response response;
        if (!ec) http::read(socket, buffer, response, ec);
        if (ec) return;
        if (response.result_int() == 200) ++answered;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), kClients * kRequests);
  nlohmann::json counts = stats->ToJson();
  EXPECT_EQ(counts["a"]["code_2xx"], kClients * kRequests);
  EXPECT_EQ(counts["a"]["count"], kClients * kRequests);
  EXPECT_NE(stats->Prometheus().find(absl::StrCat("cortex_requests_total{api=\"a\",code=\"2XX\"} ",
                                                  kClients * kRequests, "\n")),
            std::string::npos);

  for (size_t i = 0; i < gateways.size(); ++i) {
    asio::post(*contexts[i], [g = gateways[i].get(), io = contexts[i].get()] {
      g->Stop();
      io->stop();
    });
  }
  replica_work.reset();
  asio::post(replica_io, [&] {
    replica.server->Stop();
    replica_io.stop();
  });
  for (auto& t : servers) t.join();
}

}  // namespace
}  // namespace cortex::gateway
