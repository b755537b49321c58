// A blocking HTTP client over libcurl, for the CLI and the control plane (never the data plane).
// Thread-safe: each call uses its own handle.
#pragma once

#include <absl/status/statusor.h>

#include <map>
#include <string>
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
};

// Performs the call. A transport failure (refused, timed out) is an UnavailableError or
// DeadlineExceededError; any HTTP status is a result.
absl::StatusOr<HttpResult> Fetch(const HttpCall& call);

// Percent-encodes a query value.
std::string UrlEncode(std::string_view text);

}  // namespace cortex::net
