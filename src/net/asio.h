// The one place that includes Boost.Asio and Boost.Beast (also the precompiled header of the
// modules that use them: each translation unit that parses these headers costs ~20 s).
#pragma once

// clang-format off
#include <string>
#include <utility>  // must precede asio: boost/asio/awaitable.hpp uses std::exchange
// clang-format on

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <boost/asio.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cortex::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
// A TCP or Unix-domain stream socket: servers listen on either, the gateway reaches a replica
// on the same machine through its Unix socket and one elsewhere over TCP.
using stream_protocol = boost::asio::generic::stream_protocol;
using Stream = beast::basic_stream<stream_protocol>;

// The endpoint of a Unix-domain socket path, or an error for one longer than sun_path allows.
absl::StatusOr<stream_protocol::endpoint> UnixEndpoint(const std::string& path);
// The port of a TCP endpoint; 0 for a Unix-domain one.
uint16_t PortOf(const stream_protocol::endpoint& endpoint);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Builds a response with a body and a content type, keeping the request's version/keep-alive.
Response MakeResponse(const Request& request, http::status status, std::string body,
                      std::string_view content_type = "application/json");

// {"error": message} as JSON with the given status.
Response MakeError(const Request& request, http::status status, std::string_view message);

// An error answer from a status: the HTTP status from the one mapping (HttpStatusFor), the
// status's message as {"error": message, "kind": "err_not_found", "message": message} (ours and
// v0.24's shape: the kind is the status code's name).
Response StatusResponse(const Request& request, const absl::Status& status);

}  // namespace cortex::net
