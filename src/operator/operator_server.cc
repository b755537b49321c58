#include "operator/operator_server.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <unistd.h>

#include <iostream>

#include "common/json_fields.h"
#include "common/network_json.h"
#include "common/status.h"
#include "common/util.h"
#include "net/offload.h"
#include "operator/dashboard.h"

namespace cortex::op {

namespace asio = net::asio;
namespace http = net::http;
using nlohmann::json;

namespace {

// Query parameter `key` of `target`, or "".
std::string QueryParam(std::string_view target, std::string_view key) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  for (absl::string_view pair : absl::StrSplit(std::string(target.substr(q + 1)), '&')) {
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == absl::string_view(key.data(), key.size())) {
      return eq == absl::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

net::Response JsonResponse(const net::Request& request, const absl::StatusOr<json>& result) {
  if (!result.ok()) return net::StatusResponse(request, result.status());
  return net::MakeResponse(request, http::status::ok, result->dump());
}

absl::StatusOr<json> JsonBody(const net::Request& request, const std::string& what) {
  ASSIGN_OR_RETURN(json body, ParseNetworkJson(request.body(), what));
  if (!body.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": body must be a JSON object"));
  }
  return body;
}

// A dashboard file, revalidated by its ETag (the page changes only with the binary).
net::Response DashboardFile(const net::Request& request, std::string_view name) {
  const EmbeddedFile* file = FindDashboardFile(name);
  if (file == nullptr) {
    std::string_view target = request.target();
    return net::StatusResponse(request, absl::NotFoundError(absl::StrCat(
                                            "the dashboard has no file ",
                                            std::string(target.substr(0, target.find('?'))))));
  }
  bool unchanged = request[http::field::if_none_match] == file->etag;
  net::Response response =
      net::MakeResponse(request, unchanged ? http::status::not_modified : http::status::ok,
                        unchanged ? "" : std::string(file->bytes), file->content_type);
  response.set(http::field::etag, file->etag);
  response.set(http::field::cache_control, "no-cache");
  response.set("Content-Security-Policy", kDashboardPolicy);
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  return response;
}

const std::string& Param(const net::PathParams& params, std::string_view name) {
  static const std::string kEmpty;
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

}  // namespace

OperatorServer::OperatorServer(asio::io_context& io, OperatorServerOptions options,
                               ControlPlane plane)
    : io_(io),
      options_(std::move(options)),
      plane_(plane),
      pool_(static_cast<size_t>(std::max(1, options_.handler_threads))) {}

OperatorServer::~OperatorServer() {
  if (server_) server_->Stop();
  pool_.join();
}

absl::StatusOr<std::unique_ptr<OperatorServer>> OperatorServer::Create(
    asio::io_context& io, OperatorServerOptions options, ControlPlane plane) {
  std::unique_ptr<OperatorServer> server(new OperatorServer(io, std::move(options), plane));
  net::HttpServerOptions http_options;
  http_options.host = server->options_.host;
  http_options.port = server->options_.port;
  const config::ClusterLimits& limits = server->options_.limits;
  http_options.body_limit =
      std::max({limits.bundle_bytes, limits.operator_body_bytes, limits.job_submission_bytes});
  http_options.header_limit = limits.header_bytes;
  OperatorServer* self = server.get();
  http_options.admit = [self](const net::Request& head, uint64_t& body_limit) {
    return self->Admit(head, body_limit);
  };
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
  if (plane_.reconciler.routes_version() == after) {
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(25));
    route_waiters_.push_back(timer);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::erase(route_waiters_, timer);
  }
  co_return net::MakeResponse(request, http::status::ok,
                              plane_.reconciler.routes()->ToJson().dump());
}

std::optional<net::Response> OperatorServer::Refuse(const net::Request& head,
                                                    const RouteMatch& match) const {
  if (match.handler == nullptr) {
    std::string_view target = head.target();
    std::string path(target.substr(0, target.find('?')));
    if (!match.allowed.empty()) {
      net::Response response = net::StatusResponse(
          head, WithHttpStatus(
                    absl::InvalidArgumentError(absl::StrCat(
                        "method ", std::string(head.method_string()), " is not allowed on ", path)),
                    405));
      response.set(http::field::allow, absl::StrJoin(match.allowed, ", "));
      return response;
    }
    return net::StatusResponse(
        head, absl::NotFoundError(absl::StrCat(
                  "no such operator endpoint: ", std::string(head.method_string()), " ", path)));
  }
  if (!IsOpen(*match.handler) && !Authorized(head)) {
    return net::StatusResponse(
        head, absl::UnauthenticatedError("missing or wrong operator token (run `cortex env "
                                         "configure` or `cortex cluster up` again)"));
  }
  return std::nullopt;
}

OperatorServer::RouteMatch OperatorServer::FindRoute(const net::Request& request) {
  std::string_view target = request.target();
  return OperatorRoutes().Find(std::string(request.method_string()),
                               std::string(target.substr(0, target.find('?'))));
}

std::optional<net::Response> OperatorServer::Admit(const net::Request& head,
                                                   uint64_t& body_limit) const {
  RouteMatch match = FindRoute(head);
  if (auto refused = Refuse(head, match)) return refused;
  const config::ClusterLimits& limits = options_.limits;
  switch (*match.handler) {
    case Endpoint::kPutBundle:
      body_limit = limits.bundle_bytes;
      break;
    case Endpoint::kBatchJobs:
      body_limit = limits.job_submission_bytes;
      break;
    default:
      body_limit = limits.operator_body_bytes;
  }
  return std::nullopt;
}

bool OperatorServer::Authorized(const net::Request& request) const {
  return request[http::field::authorization] == absl::StrCat("Bearer ", options_.token);
}

asio::awaitable<net::Response> OperatorServer::Handle(net::Request& request) {
  std::string_view target = request.target();
  RouteMatch match = FindRoute(request);
  // Admit refused these from the head already; checked again, as the switch needs the match.
  if (auto refused = Refuse(request, match)) co_return *refused;
  Endpoint endpoint = *match.handler;
  bool authorized = Authorized(request);
  switch (endpoint) {
    case Endpoint::kHealth:
      // The pid lets `cortex cluster up` tell its own operator from another one on the port.
      co_return net::MakeResponse(request, http::status::ok,
                                  json{{"status", "ok"},
                                       {"pid", ::getpid()},
                                       {"reconcile_passes", plane_.reconciler.passes()}}
                                      .dump());
    case Endpoint::kInfo:
      co_return net::MakeResponse(request, http::status::ok,
                                  json{{"version", kCortexVersion}, {"status", "ok"}}.dump());
    case Endpoint::kRoutes: {
      int64_t after = -1;
      (void)absl::SimpleAtoi(QueryParam(target, "after"), &after);
      co_return co_await WatchRoutes(request, after);
    }
    case Endpoint::kDashboard:
      co_return DashboardFile(request, Param(match.params, "file"));
    case Endpoint::kShutdown:
      if (options_.on_shutdown) asio::post(io_, options_.on_shutdown);
      co_return net::MakeResponse(request, http::status::ok, R"({"message":"shutting down"})");
    default:
      break;
  }
  net::PathParams params = std::move(match.params);
  co_return co_await net::Offload(
      pool_.get_executor(), [this, endpoint, &request, &params, authorized] {
        try {
          return Blocking(endpoint, request, params, authorized);
        } catch (const std::exception& e) {
          // A handler bug must cost one request, not the server; its text stays in our log.
          std::cerr << "operator: internal error serving " << request.method_string() << " "
                    << request.target() << ": " << e.what() << std::endl;
          return net::StatusResponse(request,
                                     absl::InternalError("internal error (see the operator log)"));
        }
      });
}

net::Response OperatorServer::Blocking(Endpoint endpoint, net::Request& request,
                                       const net::PathParams& params, bool authorized) {
  std::string_view target = request.target();
  const std::string& api = Param(params, "api");
  switch (endpoint) {
    case Endpoint::kBatchJobs:
      return BatchJobs(request, api, Param(params, "job"), authorized);
    case Endpoint::kMetrics: {
      std::string text = plane_.views.MetricsText();
      if (options_.metrics_text) text += options_.metrics_text();
      return net::MakeResponse(request, http::status::ok, std::move(text),
                               "text/plain; version=0.0.4");
    }
    case Endpoint::kHasBundle: {
      bool has = plane_.bundles.Has(Param(params, "id"));
      return net::MakeResponse(request, has ? http::status::ok : http::status::not_found, "");
    }
    case Endpoint::kGetBundle: {
      auto bytes = plane_.bundles.Get(Param(params, "id"));
      if (!bytes.ok()) return net::StatusResponse(request, bytes.status());
      return net::MakeResponse(request, http::status::ok, std::move(*bytes), "application/x-tar");
    }
    case Endpoint::kWorkerSpec:
      return JsonResponse(request, WorkerSpec(api, Param(params, "job")));
    case Endpoint::kReplicaSpec:
      return JsonResponse(request, ReplicaSpec(api, QueryParam(target, "predictor_id")));
    case Endpoint::kPutBundle: {
      absl::Status st = plane_.bundles.Put(Param(params, "id"), request.body());
      if (!st.ok()) return net::StatusResponse(request, st);
      return net::MakeResponse(request, http::status::ok, R"({"status":"stored"})");
    }
    case Endpoint::kDeploy: {
      auto body = JsonBody(request, "deploy");
      auto results = body.ok() ? plane_.deploys.Deploy(*body) : body.status();
      return JsonResponse(
          request, results.ok() ? plane_.views.WithDescriptions(*results) : results.status());
    }
    case Endpoint::kPatch: {
      auto body = JsonBody(request, "patch");
      auto results = body.ok() ? plane_.deploys.Patch(*body) : body.status();
      return JsonResponse(
          request, results.ok() ? plane_.views.WithDescriptions(*results) : results.status());
    }
    case Endpoint::kRefresh:
      return JsonResponse(request,
                          plane_.deploys.Refresh(api, QueryParam(target, "force") == "true"));
    case Endpoint::kListApis:
      return JsonResponse(request, plane_.views.List());
    case Endpoint::kApiHistory:
      return JsonResponse(request, plane_.views.History(api));
    case Endpoint::kGetApi:
      return JsonResponse(request, plane_.views.Get(api));
    case Endpoint::kDeleteApi:
      return JsonResponse(request, plane_.deploys.Delete(api));
    case Endpoint::kListJobs:
    case Endpoint::kGetJob:
    case Endpoint::kStopJob:
      return BatchJobs(request, api, Param(params, "job"), authorized);
    case Endpoint::kWorkerCall: {
      if (plane_.leases == nullptr) {
        return net::StatusResponse(request, absl::UnimplementedError("batch jobs are not enabled"));
      }
      auto body = JsonBody(request, "worker call");
      return JsonResponse(request, body.ok() ? plane_.leases->Call(Param(params, "job"),
                                                                   Param(params, "action"), *body)
                                             : body.status());
    }
    case Endpoint::kLogs: {
      int64_t offset = 0;
      (void)absl::SimpleAtoi(QueryParam(target, "offset"), &offset);
      auto logs = plane_.views.Logs(api, QueryParam(target, "job"), offset, 1 << 20);
      if (!logs.ok()) return net::StatusResponse(request, logs.status());
      net::Response response =
          net::MakeResponse(request, http::status::ok, std::move(logs->first), "text/plain");
      response.set("X-Cortex-Next-Offset", std::to_string(logs->second));
      return response;
    }
    default:
      return net::StatusResponse(request, absl::InternalError("unrouted endpoint"));
  }
}

absl::StatusOr<json> OperatorServer::ReplicaSpec(const std::string& name,
                                                 std::string_view predictor_id) {
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> found, plane_.specs.Find(plane_.store, name));
  if (!found) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  const ApiSpec& spec = **found;
  if (spec.kind() != config::Kind::kRealtimeAPI) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is a ",
                                                   std::string(config::KindName(spec.kind())),
                                                   ", not a RealtimeAPI: it has no replicas"));
  }
  // A replica runs one version: once the API has moved on, a restarted replica of the old one
  // must not start the new version under the old version's labels (its Deployment replaces it).
  if (!predictor_id.empty() && predictor_id != spec.record.predictor_id) {
    return absl::AbortedError(
        absl::StrCat(name, " no longer runs version ", std::string(predictor_id), " (now ",
                     spec.record.predictor_id, "); this replica is being replaced"));
  }
  return json{{"api", spec.config->ToJson()},
              {"api_id", spec.record.api_id},
              {"predictor_id", spec.record.predictor_id},
              {"deployment_id", spec.record.deployment_id},
              {"project_id", spec.record.project_id}};
}

absl::StatusOr<json> OperatorServer::WorkerSpec(const std::string& name,
                                                const std::string& job_id) {
  if (plane_.queue == nullptr) return absl::UnimplementedError("batch jobs are not enabled");
  ASSIGN_OR_RETURN(std::optional<store::JobRecord> job, plane_.queue->GetJob(job_id));
  if (!job || job->api_name != name) {
    return absl::NotFoundError(absl::StrCat(name, " has no job ", job_id));
  }
  if (job->end_time != 0) {
    return absl::AbortedError(absl::StrCat("job ", job_id, " has ended (", job->status, ")"));
  }
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> found, plane_.specs.Find(plane_.store, name));
  if (!found) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  // As the local provider's workers: the API's current configuration and the job's spec.
  return json{{"api", (*found)->config->ToJson()},
              {"project_id", (*found)->record.project_id},
              {"job_spec", json::parse(job->spec_json, nullptr, false)}};
}

net::Response OperatorServer::BatchJobs(net::Request& request, const std::string& name,
                                        const std::string& path_job, bool authorized) {
  if (plane_.jobs == nullptr) {
    return net::StatusResponse(request, absl::UnimplementedError("batch jobs are not enabled"));
  }
  auto api = plane_.specs.Find(plane_.store, name);
  if (!api.ok()) return net::StatusResponse(request, api.status());
  if (!*api)
    return net::StatusResponse(request,
                               absl::NotFoundError(absl::StrCat(name, " is not deployed")));
  const ApiSpec& spec = ***api;
  if (spec.kind() != config::Kind::kBatchAPI) {
    return net::StatusResponse(
        request, absl::InvalidArgumentError(absl::StrCat(
                     "this operation is only allowed for BatchAPI kind and is not supported for ",
                     name, " of kind ", spec.record.kind)));
  }
  std::string_view target = request.target();
  std::string job_id = path_job.empty() ? QueryParam(target, "jobID") : path_job;
  switch (request.method()) {
    case http::verb::post: {
      std::string text;
      auto result =
          plane_.jobs->Submit(spec, request.body(), QueryParam(target, "dryRun") == "true", &text);
      if (result.ok() && !text.empty()) {
        return net::MakeResponse(request, http::status::ok, text, "text/plain");
      }
      return JsonResponse(request, result);
    }
    case http::verb::get:
      if (job_id.empty()) {
        // Listing every job is our addition to Cortex's API: it is for the cluster's owner.
        if (!authorized) {
          return net::StatusResponse(
              request, absl::UnauthenticatedError(
                           "listing jobs needs the operator token (ask for one job with ?jobID=)"));
        }
        return JsonResponse(request, plane_.jobs->List(name));
      }
      return JsonResponse(request, plane_.jobs->Describe(
                                       spec, job_id,
                                       EndpointUrl(*spec.config, plane_.views.options().gateway_url,
                                                   plane_.views.options().lb_url),
                                       /*redact_secrets=*/!authorized));
    case http::verb::delete_:
      if (job_id.empty()) {
        return net::StatusResponse(request, absl::InvalidArgumentError("jobID must be given"));
      }
      return JsonResponse(request, plane_.jobs->Stop(name, job_id));
    default:
      return net::StatusResponse(request, absl::InvalidArgumentError("method not supported"));
  }
}

}  // namespace cortex::op
