#include "cli/operator_client.h"

#include <absl/strings/str_cat.h>

namespace cortex::cli {

absl::StatusOr<OperatorClient> OperatorClient::ForEnvironment(const std::string& name) {
  auto env = ResolveEnvironment(name);
  if (!env.ok()) return env.status();
  return OperatorClient(*env);
}

absl::StatusOr<net::HttpResult> OperatorClient::Call(const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body, long timeout_ms) {
  net::HttpCall call;
  call.method = method;
  call.url = env_.operator_endpoint + path;
  call.body = body;
  call.timeout_ms = timeout_ms;
  call.headers = {{"Authorization", "Bearer " + env_.operator_token},
                  {"Content-Type", "application/json"}};
  auto result = net::Fetch(call);
  if (!result.ok()) {
    if (result.status().code() == absl::StatusCode::kUnavailable) {
      std::string hint = env_.provider == "local"
                             ? "start the local cluster with `cortex cluster up`"
                             : "check that the cluster is running and the endpoint is right "
                               "(`cortex env list`)";
      return absl::UnavailableError(absl::StrCat("unable to connect to the operator at ",
                                                 env_.operator_endpoint, " (environment ",
                                                 env_.name, "); ", hint));
    }
    return result.status();
  }
  if (result->status >= 400) {
    auto body_json = nlohmann::json::parse(result->body, nullptr, false);
    std::string message =
        !body_json.is_discarded() && body_json.is_object() && body_json.contains("error")
            ? body_json["error"].get<std::string>()
            : result->body;
    absl::StatusCode code = result->status == 404   ? absl::StatusCode::kNotFound
                            : result->status == 401 ? absl::StatusCode::kUnauthenticated
                                                    : absl::StatusCode::kInvalidArgument;
    return absl::Status(code, message);
  }
  return result;
}

absl::StatusOr<nlohmann::json> OperatorClient::CallJson(const std::string& method,
                                                        const std::string& path,
                                                        const std::string& body) {
  auto result = Call(method, path, body);
  if (!result.ok()) return result.status();
  auto json = nlohmann::json::parse(result->body, nullptr, false);
  if (json.is_discarded()) return absl::InternalError("the operator sent a malformed response");
  return json;
}

}  // namespace cortex::cli
