// A blocking HTTP client over libcurl, for the CLI and the control plane (never the data plane).
// Thread-safe: each call uses its own handle.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cortex::net {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  long timeout_ms = 600'000;
  long connect_timeout_ms = 2'000;
  // HTTPS (the Kubernetes API): the CA to trust, a client certificate and its key, all PEM text
  // (empty: the system's CAs, no client certificate).
  std::string ca_pem = {};
  std::string client_cert_pem = {};
  std::string client_key_pem = {};
  bool insecure_skip_verify = false;
  // When set, a 2xx answer's body is passed here as it arrives instead of into HttpResult::body
  // (a watch's stream); returning false ends the call early, as a success. Other answers' bodies
  // are still collected (their error message).
  std::function<bool(std::string_view chunk)> on_body = {};
  // When set, polled while the call waits (about once a second when nothing arrives, more often
  // otherwise); true aborts it with a CancelledError (a watch being stopped).
  std::function<bool()> cancelled = {};
};

// Performs the call. A transport failure (refused, timed out) is an UnavailableError or
// DeadlineExceededError, a call `cancelled` ended a CancelledError; any HTTP status is a result.
absl::StatusOr<HttpResult> Fetch(const HttpCall& call);

// Percent-encodes a query value.
std::string UrlEncode(std::string_view text);

}  // namespace cortex::net
