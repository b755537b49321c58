// An HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Each accepted connection runs a coroutine that reads requests, awaits the handler, and writes
// responses with keep-alive. All coroutines run on the io_context given at creation; handlers
// must not block it. Not thread-safe: call Start/Stop from the io_context's thread (or before
// it runs).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "net/asio.h"

namespace cortex::net {

// What a handler may learn about the client of the request it is handling.
class ClientWatch {
 public:
  // The client closed its connection (or reset it) after sending the request: no one will read
  // the answer.
  bool gone() const { return gone_; }
  // `fn` runs once if the client goes while the request is handled (replacing an earlier one;
  // nullptr clears it). It runs on the server's io_context.
  void OnGone(std::function<void()> fn) { on_gone_ = std::move(fn); }

 private:
  friend class HttpServer;
  void MarkGone() {
    gone_ = true;
    if (auto fn = std::exchange(on_gone_, nullptr)) fn();
  }
  bool gone_ = false;
  std::function<void()> on_gone_;
};

using Handler = std::function<asio::awaitable<Response>(Request&)>;
// A handler that also watches its client (to drop work no one waits for).
using WatchingHandler = std::function<asio::awaitable<Response>(Request&, ClientWatch&)>;

// Looks at a request's header before its body is read (`head` has an empty body). Returning a
// response sends it instead of reading the body: nothing a route or a token refuses is buffered.
// `body_limit` starts at the server's and may be changed for this request.
using Admit = std::function<std::optional<Response>(const Request& head, uint64_t& body_limit)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                       // 0: any free port
  uint64_t body_limit = 64 * 1024 * 1024;  // larger bodies get 413
  // Larger headers get 431, and a request line longer than this alone gets 414.
  uint32_t header_limit = 64 * 1024;
  // Listen on this Unix-domain socket path instead of host:port (a stale file there is replaced;
  // the server removes it when it stops).
  std::string unix_path;
  bool reuse_port = false;  // SO_REUSEPORT: other servers may listen on the same TCP port
  int idle_timeout_s = 75;  // keep-alive idle limit
  Admit admit;              // optional
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(asio::io_context& io,
                                                            const HttpServerOptions& options,
                                                            Handler handler);
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(asio::io_context& io,
                                                            const HttpServerOptions& options,
                                                            WatchingHandler handler);
  ~HttpServer();

  uint16_t port() const { return port_; }  // 0 for a Unix-domain listener
  void Start();                            // begins accepting
  void Stop();  // closes the listener; open connections finish their current request

 private:
  HttpServer(asio::io_context& io, HttpServerOptions options, WatchingHandler handler);
  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(stream_protocol::socket socket);
  // Marks `watch` gone if the client closes the connection while its request is handled.
  static void WatchClient(stream_protocol::socket& socket,
                          const std::shared_ptr<ClientWatch>& watch);
  // Reads the request into `parser` (header, admission, then body). kAnswered: it was refused
  // and answered, and the connection goes on (no body was left unread); kClosed: the connection
  // ends (after an answer to a bad or refused request, perhaps).
  enum class ReadOutcome { kRequest, kAnswered, kClosed };
  asio::awaitable<ReadOutcome> Read(Stream& stream, beast::flat_buffer& buffer,
                                    http::request_parser<http::string_body>& parser);

  asio::io_context& io_;
  HttpServerOptions options_;
  WatchingHandler handler_;
  asio::basic_socket_acceptor<stream_protocol> acceptor_;
  uint16_t port_ = 0;
};

}  // namespace cortex::net
