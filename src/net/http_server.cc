#include "net/http_server.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/util.h"
#include "net/eager_io.h"

namespace cortex::net {

absl::StatusOr<stream_protocol::endpoint> UnixEndpoint(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("Unix socket path ", path,
                                                   " is empty or longer than ",
                                                   sizeof(sockaddr_un::sun_path) - 1, " bytes"));
  }
  return stream_protocol::endpoint(asio::local::stream_protocol::endpoint(path));
}

uint16_t PortOf(const stream_protocol::endpoint& endpoint) {
  const sockaddr* address = endpoint.data();
  if (address->sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  }
  if (address->sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
  }
  return 0;
}

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
  // Ours ("error") next to v0.24's ({"kind", "message"}), which its clients read.
  std::string message(status.message());
  std::string kind = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  return MakeResponse(
      request, static_cast<http::status>(HttpStatusFor(status)),
      nlohmann::json{{"error", message}, {"kind", "err_" + kind}, {"message", message}}.dump());
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, WatchingHandler handler)
    : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(asio::io_context& io,
                                                               const HttpServerOptions& options,
                                                               Handler handler) {
  return Create(io, options, [handler = std::move(handler)](Request& request, ClientWatch&) {
    return handler(request);
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(asio::io_context& io,
                                                               const HttpServerOptions& options,
                                                               WatchingHandler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer(io, options, std::move(handler)));
  boost::system::error_code ec;
  stream_protocol::endpoint endpoint;
  std::string where;
  if (!options.unix_path.empty()) {
    ASSIGN_OR_RETURN(endpoint, UnixEndpoint(options.unix_path));
    where = options.unix_path;
    ::unlink(options.unix_path.c_str());  // a stale socket of an earlier run
  } else {
    auto address = asio::ip::make_address(options.host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen address ", options.host));
    endpoint = tcp::endpoint(address, options.port);
    where = absl::StrCat(options.host, ":", options.port);
  }
  auto& acceptor = server->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec && options.unix_path.empty()) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && options.reuse_port) {
      int on = 1;
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("listening on ", where, ": ", ec.message()));
  server->port_ = PortOf(acceptor.local_endpoint());
  return server;
}

void HttpServer::Start() { asio::co_spawn(io_, Accept(), asio::detached); }

void HttpServer::Stop() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (!options_.unix_path.empty()) ::unlink(options_.unix_path.c_str());
}

asio::awaitable<void> HttpServer::Accept() {
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    stream_protocol::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // e.g. EMFILE: keep accepting, but let connections close meanwhile instead of spinning.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (options_.unix_path.empty()) socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
  }
}

namespace {

// After a header_limit error: whether the request line alone passed the limit, so that the URL,
// not the headers, is too long (414, as nginx answers). Until the parser has the whole request
// line (and sets the target) it has consumed nothing: the buffer starts with that line.
bool RequestLineTooLong(const http::request_parser<http::string_body>& parser,
                        const beast::flat_buffer& buffer, uint32_t header_limit) {
  if (!parser.get().target().empty()) return false;
  std::string_view read(static_cast<const char*>(buffer.data().data()), buffer.size());
  return std::min(read.find("\r\n"), read.size()) >= header_limit;
}

Response ReadErrorResponse(const boost::system::error_code& ec, uint64_t body_limit,
                           uint32_t header_limit, bool request_line_too_long = false) {
  Request head;
  head.version(11);
  absl::Status status;
  if (ec == http::error::header_limit && request_line_too_long) {
    status = WithHttpStatus(
        absl::InvalidArgumentError(
            absl::StrCat("request URL is longer than the limit (", FormatBytes(header_limit), ")")),
        414);
  } else if (ec == http::error::body_limit) {
    status = WithHttpStatus(
        absl::ResourceExhaustedError(
            absl::StrCat("request body is larger than the limit (", FormatBytes(body_limit), ")")),
        413);
  } else if (ec == http::error::header_limit) {
    status = WithHttpStatus(
        absl::ResourceExhaustedError(absl::StrCat("request header is larger than the limit (",
                                                  FormatBytes(header_limit), ")")),
        431);
  } else {
    status = absl::InvalidArgumentError(absl::StrCat("bad request: ", ec.message()));
  }
  Response response = StatusResponse(head, status);
  response.keep_alive(false);
  return response;
}

// The peer went away or went quiet: nothing to answer.
bool PeerGone(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == asio::error::eof ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe;
}

// After refusing a request whose body was not read: stop sending, then read and drop what the
// client still sends for a short while, so that closing does not reset the connection before the
// client has read the answer.
asio::awaitable<void> Linger(Stream& stream) {
  boost::system::error_code ec;
  stream.socket().shutdown(stream_protocol::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 64 * 1024> sink;
  for (size_t dropped = 0; !ec && dropped < 16 * 1024 * 1024;) {
    dropped += co_await stream.async_read_some(asio::buffer(sink),
                                               asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

void HttpServer::WatchClient(stream_protocol::socket& socket,
                             const std::shared_ptr<ClientWatch>& watch) {
  // Readable while a request is handled: the client closed (end of stream), reset, or sent its
  // next request early (then the watch just ends). Only a weak hold: a finished request's watch
  // is gone, and with it any use of the socket.
  socket.async_wait(stream_protocol::socket::wait_read,
                    [weak = std::weak_ptr<ClientWatch>(watch),
                     fd = socket.native_handle()](const boost::system::error_code& ec) {
                      auto watch = weak.lock();
                      if (ec || !watch) return;
                      char byte;
                      ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                        watch->MarkGone();
                      }
                    });
}

asio::awaitable<HttpServer::ReadOutcome> HttpServer::Read(
    Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::string_body>& parser) {
  boost::system::error_code ec;
  uint64_t body_limit = options_.body_limit;
  // The body's limit is checked after admission (which may change it), not by the header parser.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // (not none: Beast 1.74 compares
  // a Content-Length with an empty limit as "over")
  parser.header_limit(options_.header_limit);
  stream.expires_after(std::chrono::seconds(options_.idle_timeout_s));
  // Not eager: a keep-alive client sends its next request only after reading our answer, so
  // an immediate read would nearly always find nothing (measured: one wasted recv per request).
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  std::optional<Response> refused;
  if (!ec) {
    if (options_.admit) refused = options_.admit(parser.get(), body_limit);
    if (!refused && parser.content_length() && *parser.content_length() > body_limit) {
      refused = ReadErrorResponse(http::error::body_limit, body_limit, options_.header_limit);
    }
  } else if (!PeerGone(ec)) {
    refused = ReadErrorResponse(ec, body_limit, options_.header_limit,
                                RequestLineTooLong(parser, buffer, options_.header_limit));
  }
  if (refused) {
    // A bad head (too large, say) or an unread body leaves bytes the client is still sending.
    bool unread = ec || !parser.is_done();
    bool keep_open = !unread && refused->keep_alive();
    refused->keep_alive(keep_open);
    refused->prepare_payload();
    stream.expires_after(std::chrono::seconds(10));
    co_await EagerWrite(stream, *refused, ec);
    if (unread && !ec) co_await Linger(stream);
    co_return keep_open && !ec ? ReadOutcome::kAnswered : ReadOutcome::kClosed;
  }
  if (ec) co_return ReadOutcome::kClosed;
  if (!parser.is_done()) {
    parser.body_limit(body_limit);
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      co_await EagerWrite(stream, go_on, ec);
      if (ec) co_return ReadOutcome::kClosed;
      // The client sends the body only once it reads this: nothing to take at once.
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await EagerRead(stream, buffer, parser, ec);
    }
    if (ec) {
      if (!PeerGone(ec)) {
        Response bad = ReadErrorResponse(ec, body_limit, options_.header_limit);
        stream.expires_after(std::chrono::seconds(10));
        co_await EagerWrite(stream, bad, ec);
      }
      co_return ReadOutcome::kClosed;
    }
  }
  co_return ReadOutcome::kRequest;
}

asio::awaitable<void> HttpServer::Serve(stream_protocol::socket socket) {
  Stream stream(std::move(socket));
  beast::flat_buffer buffer;
  boost::system::error_code write_ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    ReadOutcome outcome = co_await Read(stream, buffer, parser);
    if (outcome == ReadOutcome::kClosed) break;
    if (outcome == ReadOutcome::kAnswered) continue;
    Request request = parser.release();
    // The handler may await for as long as the request takes: no read deadline meanwhile.
    stream.expires_never();
    auto watch = std::make_shared<ClientWatch>();
    WatchClient(stream.socket(), watch);
    Response response;
    try {
      response = co_await handler_(request, *watch);
    } catch (const std::exception& e) {
      // A handler bug must cost one request, not the server; its text stays in our log.
      std::cerr << "internal error serving " << request.method_string() << " " << request.target()
                << ": " << e.what() << std::endl;
      response =
          StatusResponse(request, absl::InternalError("internal error (see the server log)"));
    }
    watch->OnGone(nullptr);
    bool client_gone = watch->gone();
    watch.reset();  // the watch ends with the request (a pending wait finds it gone)
    if (client_gone) break;
    stream.expires_after(std::chrono::seconds(options_.idle_timeout_s));
    co_await EagerWrite(stream, response, write_ec);
    if (write_ec || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(stream_protocol::socket::shutdown_send, ignored);
}

}  // namespace cortex::net
