// The one place that includes Boost.Asio and Boost.Beast (also the precompiled header of the
// modules that use them: each translation unit that parses these headers costs ~20 s).
#pragma once

// clang-format off
#include <utility>  // must precede asio: boost/asio/awaitable.hpp uses std::exchange
// clang-format on

#include <absl/status/status.h>

#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cortex::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Builds a response with a body and a content type, keeping the request's version/keep-alive.
Response MakeResponse(const Request& request, http::status status, std::string body,
                      std::string_view content_type = "application/json");

// {"error": message} as JSON with the given status.
Response MakeError(const Request& request, http::status status, std::string_view message);

// An error answer from a status: the HTTP status from the one mapping (HttpStatusFor), the
// status's message as {"error": message}.
Response StatusResponse(const Request& request, const absl::Status& status);

}  // namespace cortex::net
