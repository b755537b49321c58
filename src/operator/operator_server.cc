#include "operator/operator_server.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <unistd.h>

#include "common/status.h"

namespace cortex::op {

namespace asio = net::asio;
namespace http = net::http;
using nlohmann::json;

namespace {

// Query parameter `key` of `target`, or "".
std::string QueryParam(std::string_view target, std::string_view key) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string query(target.substr(q + 1));
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == absl::string_view(key.data(), key.size())) {
      return eq == absl::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

net::Response StatusResponse(const net::Request& request, const absl::Status& status) {
  return net::MakeResponse(request, static_cast<http::status>(HttpStatusFor(status)),
                           json{{"error", status.message()}}.dump());
}

net::Response JsonResponse(const net::Request& request, const absl::StatusOr<json>& result) {
  if (!result.ok()) return StatusResponse(request, result.status());
  return net::MakeResponse(request, http::status::ok, result->dump());
}

}  // namespace

absl::StatusOr<std::unique_ptr<OperatorServer>> OperatorServer::Create(
    asio::io_context& io, OperatorServerOptions options, Operator& op) {
  std::unique_ptr<OperatorServer> server(new OperatorServer(io, std::move(options), op));
  net::HttpServerOptions http_options;
  http_options.host = server->options_.host;
  http_options.port = server->options_.port;
  http_options.body_limit = 600ull * 1024 * 1024;  // project bundles up to the 512 MiB limit
  OperatorServer* self = server.get();
  auto http_server = net::HttpServer::Create(
      io, http_options, [self](net::Request& request) { return self->Handle(request); });
  if (!http_server.ok()) return http_server.status();
  server->server_ = std::move(*http_server);
  return server;
}

void OperatorServer::NotifyRoutesChanged() {
  asio::post(io_, [this] {
    for (auto& timer : route_waiters_) timer->cancel();
    route_waiters_.clear();
  });
}

asio::awaitable<net::Response> OperatorServer::WatchRoutes(net::Request& request, int64_t after) {
  // Long poll: answer at once when the table differs from the caller's, else wait (25 s at most).
  if (op_.routes_version() == after) {
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(25));
    route_waiters_.push_back(timer);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::erase(route_waiters_, timer);
  }
  co_return net::MakeResponse(request, http::status::ok, op_.Routes().dump());
}

asio::awaitable<net::Response> OperatorServer::Handle(net::Request& request) {
  std::string_view target = request.target();
  std::string path(target.substr(0, target.find('?')));
  if (path == "/healthz" || path == "/verifycortex") {
    // The pid lets `cortex cluster up` tell its own operator from another one on the port.
    co_return net::MakeResponse(request, http::status::ok,
                                json{{"status", "ok"}, {"pid", ::getpid()}}.dump());
  }
  if (absl::StartsWith(path, "/v1/batch/")) {
    // BatchAPI job endpoints, forwarded by the gateway: open, as in Cortex (spec §11).
    std::string rest = path.substr(std::string_view("/v1/batch/").size());
    size_t slash = rest.find('/');
    std::string api = rest.substr(0, slash);
    std::string job_id =
        slash == std::string::npos ? QueryParam(target, "jobID") : rest.substr(slash + 1);
    std::string method(request.method_string());
    std::string text;
    auto result = op_.JobEndpoint(method, api, job_id, request.body(),
                                  QueryParam(target, "dryRun") == "true", &text);
    if (!result.ok()) {
      co_return net::MakeResponse(request,
                                  static_cast<http::status>(HttpStatusFor(result.status())),
                                  json{{"error", std::string(result.status().message())}}.dump());
    }
    if (!text.empty()) co_return net::MakeResponse(request, http::status::ok, text, "text/plain");
    co_return net::MakeResponse(request, http::status::ok, result->dump());
  }
  if (request[http::field::authorization] != absl::StrCat("Bearer ", options_.token)) {
    co_return net::MakeError(request, http::status::unauthorized,
                             "missing or wrong operator token (run `cortex env configure` or "
                             "`cortex cluster up` again)");
  }
  auto method = request.method();
  if (path == "/v1/info" && method == http::verb::get) {
    co_return net::MakeResponse(request, http::status::ok,
                                json{{"version", "0.24.0"}, {"status", "ok"}}.dump());
  }
  if (path == "/metrics" && method == http::verb::get) {
    std::string text = op_.MetricsText();
    if (options_.metrics_text) text += options_.metrics_text();
    co_return net::MakeResponse(request, http::status::ok, std::move(text),
                                "text/plain; version=0.0.4");
  }
  if (path == "/v1/routes" && method == http::verb::get) {
    int64_t after = -1;
    (void)absl::SimpleAtoi(QueryParam(target, "after"), &after);
    co_return co_await WatchRoutes(request, after);
  }
  if (absl::StartsWith(path, "/v1/bundles/")) {
    std::string id = path.substr(std::string_view("/v1/bundles/").size());
    if (method == http::verb::head || method == http::verb::get) {
      bool has = op_.HasBundle(id);
      co_return net::MakeResponse(request, has ? http::status::ok : http::status::not_found, "");
    }
    if (method == http::verb::put) {
      absl::Status st = op_.PutBundle(id, request.body());
      if (!st.ok()) co_return StatusResponse(request, st);
      co_return net::MakeResponse(request, http::status::ok, R"({"status":"stored"})");
    }
  }
  if (path == "/v1/deploy" && method == http::verb::post) {
    json body = json::parse(request.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      co_return net::MakeError(request, http::status::bad_request,
                               "deploy: body must be a JSON object");
    }
    co_return JsonResponse(request, op_.Deploy(body));
  }
  if (absl::StartsWith(path, "/v1/jobs/") && method == http::verb::post) {
    // The batch workers' protocol: /v1/jobs/<job>/<action>.
    std::string rest = path.substr(std::string_view("/v1/jobs/").size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos)
      co_return net::MakeError(request, http::status::not_found, "no action");
    json body = json::parse(request.body(), nullptr, false);
    if (!body.is_object())
      co_return net::MakeError(request, http::status::bad_request, "body must be a JSON object");
    co_return JsonResponse(request,
                           op_.WorkerCall(rest.substr(0, slash), rest.substr(slash + 1), body));
  }
  if (absl::StartsWith(path, "/v1/apis/") && path.find("/jobs") != std::string::npos) {
    // The CLI's view of jobs: /v1/apis/<api>/jobs[/<job>] (GET, DELETE).
    std::string rest = path.substr(std::string_view("/v1/apis/").size());
    std::string api = rest.substr(0, rest.find('/'));
    std::string after = rest.substr(api.size() + std::string_view("/jobs").size());
    std::string job_id = after.empty() ? "" : after.substr(1);
    std::string text;
    co_return JsonResponse(request, op_.JobEndpoint(std::string(request.method_string()), api,
                                                    job_id, "", false, &text));
  }
  if (path == "/v1/patch" && method == http::verb::post) {
    json body = json::parse(request.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      co_return net::MakeError(request, http::status::bad_request,
                               "patch: body must be a JSON object");
    }
    co_return JsonResponse(request, op_.Patch(body));
  }
  if (absl::StartsWith(path, "/v1/apis/") && absl::EndsWith(path, "/refresh") &&
      method == http::verb::post) {
    std::string name = path.substr(std::string_view("/v1/apis/").size());
    name.resize(name.size() - std::string_view("/refresh").size());
    co_return JsonResponse(request, op_.Refresh(name, QueryParam(target, "force") == "true"));
  }
  if (path == "/v1/apis" && method == http::verb::get)
    co_return JsonResponse(request, op_.ListApis());
  if (absl::StartsWith(path, "/v1/apis/")) {
    std::string name = path.substr(std::string_view("/v1/apis/").size());
    if (method == http::verb::get) co_return JsonResponse(request, op_.GetApi(name));
    if (method == http::verb::delete_) co_return JsonResponse(request, op_.DeleteApi(name));
  }
  if (absl::StartsWith(path, "/v1/logs/") && method == http::verb::get) {
    std::string name = path.substr(std::string_view("/v1/logs/").size());
    int64_t offset = 0;
    (void)absl::SimpleAtoi(QueryParam(target, "offset"), &offset);
    auto logs = op_.ReadLogs(name, QueryParam(target, "job"), offset, 1 << 20);
    if (!logs.ok()) co_return StatusResponse(request, logs.status());
    net::Response response =
        net::MakeResponse(request, http::status::ok, std::move(logs->first), "text/plain");
    response.set("X-Cortex-Next-Offset", std::to_string(logs->second));
    co_return response;
  }
  if (path == "/v1/shutdown" && method == http::verb::post) {
    if (options_.on_shutdown) asio::post(io_, options_.on_shutdown);
    co_return net::MakeResponse(request, http::status::ok, R"({"message":"shutting down"})");
  }
  co_return net::MakeError(
      request, http::status::not_found,
      absl::StrCat("no such operator endpoint: ", std::string(request.method_string()), " ", path));
}

}  // namespace cortex::op
