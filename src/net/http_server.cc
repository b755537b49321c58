#include "net/http_server.h"

#include <absl/strings/str_cat.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cortex::net {

Response MakeResponse(const Request& request, http::status status, std::string body,
                      std::string_view content_type) {
  Response response{status, request.version()};
  response.set(http::field::content_type, std::string(content_type));
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response MakeError(const Request& request, http::status status, std::string_view message) {
  return MakeResponse(request, status, nlohmann::json{{"error", message}}.dump());
}

Response StatusResponse(const Request& request, const absl::Status& status) {
  return MakeError(request, static_cast<http::status>(HttpStatusFor(status)),
                   std::string(status.message()));
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler)
    : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(asio::io_context& io,
                                                               const HttpServerOptions& options,
                                                               Handler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer(io, options, std::move(handler)));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen address ", options.host));
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = server->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("listening on ", options.host, ":", options.port, ": ", ec.message()));
  }
  server->port_ = acceptor.local_endpoint().port();
  return server;
}

void HttpServer::Start() { asio::co_spawn(io_, Accept(), asio::detached); }

void HttpServer::Stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> HttpServer::Accept() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // e.g. EMFILE: keep accepting, but let connections close meanwhile instead of spinning.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  boost::system::error_code read_ec, write_ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.body_limit);
    parser.header_limit(64 * 1024);
    stream.expires_after(std::chrono::seconds(options_.idle_timeout_s));
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, read_ec));
    if (read_ec) {
      if (read_ec == http::error::body_limit) {
        Request head;
        head.version(11);
        Response too_large =
            StatusResponse(head, WithHttpStatus(absl::ResourceExhaustedError(absl::StrCat(
                                                    "request body is larger than the limit (",
                                                    options_.body_limit, " bytes)")),
                                                413));
        too_large.keep_alive(false);
        stream.expires_after(std::chrono::seconds(10));
        co_await http::async_write(stream, too_large,
                                   asio::redirect_error(asio::use_awaitable, write_ec));
      } else if (read_ec != http::error::end_of_stream && read_ec != beast::error::timeout &&
                 read_ec != asio::error::connection_reset && read_ec != asio::error::eof &&
                 read_ec != asio::error::operation_aborted) {
        Request head;
        head.version(11);
        Response bad = StatusResponse(
            head, absl::InvalidArgumentError(absl::StrCat("bad request: ", read_ec.message())));
        bad.keep_alive(false);
        stream.expires_after(std::chrono::seconds(10));
        co_await http::async_write(stream, bad,
                                   asio::redirect_error(asio::use_awaitable, write_ec));
      }
      break;
    }
    Request request = parser.release();
    // The handler may await for as long as the request takes: no read deadline meanwhile.
    stream.expires_never();
    Response response;
    try {
      response = co_await handler_(request);
    } catch (const std::exception& e) {
      // A handler bug must cost one request, not the server; its text stays in our log.
      std::cerr << "internal error serving " << request.method_string() << " " << request.target()
                << ": " << e.what() << std::endl;
      response =
          StatusResponse(request, absl::InternalError("internal error (see the server log)"));
    }
    stream.expires_after(std::chrono::seconds(options_.idle_timeout_s));
    co_await http::async_write(stream, response,
                               asio::redirect_error(asio::use_awaitable, write_ec));
    if (write_ec || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace cortex::net
