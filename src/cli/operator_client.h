// The CLI's calls to an operator's REST API. Thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/env_config.h"
#include "net/http_client.h"

namespace cortex::cli {

class OperatorClient {
 public:
  explicit OperatorClient(Environment env) : env_(std::move(env)) {}
  // The client of environment `name` (the default environment when empty).
  static absl::StatusOr<OperatorClient> ForEnvironment(const std::string& name);

  // Sends the call with the environment's token. Errors from the operator come back with its
  // message; an operator that cannot be reached gives a message saying how to start it.
  absl::StatusOr<net::HttpResult> Call(const std::string& method, const std::string& path,
                                       const std::string& body = "", long timeout_ms = 600'000);
  absl::StatusOr<nlohmann::json> CallJson(const std::string& method, const std::string& path,
                                          const std::string& body = "");
  const Environment& env() const { return env_; }

 private:
  Environment env_;
};

}  // namespace cortex::cli
