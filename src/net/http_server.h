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
#include <string>

#include "net/asio.h"

namespace cortex::net {

using Handler = std::function<asio::awaitable<Response>(Request&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                       // 0: any free port
  uint64_t body_limit = 64 * 1024 * 1024;  // larger bodies get 413
  int idle_timeout_s = 75;                 // keep-alive idle limit
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(asio::io_context& io,
                                                            const HttpServerOptions& options,
                                                            Handler handler);
  ~HttpServer();

  uint16_t port() const { return port_; }
  void Start();  // begins accepting
  void Stop();   // closes the listener; open connections finish their current request

 private:
  HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler);
  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(tcp::socket socket);

  asio::io_context& io_;
  HttpServerOptions options_;
  Handler handler_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

}  // namespace cortex::net
