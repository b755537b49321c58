#include "replica/front.h"

#include <absl/strings/str_cat.h>

#include <iostream>

#include "common/status.h"
#include "common/util.h"

namespace cortex::replica {

namespace asio = net::asio;
namespace http = net::http;

namespace {

// The same limit as the gateway's, so that the gateway is the one to answer 413.
constexpr uint64_t kMaxBodyBytes = 512ull * 1024 * 1024;

constexpr std::string_view kGetMessage =
    R"({"message":"make a prediction by sending a post request to this endpoint with a json payload"})";

std::optional<BatchingOptions> BatchingOf(const config::ApiConfig& api) {
  const auto& batching = api.predictor->server_side_batching;
  if (!batching) return std::nullopt;
  return BatchingOptions{static_cast<size_t>(batching->max_batch_size),
                         std::chrono::nanoseconds(batching->interval_nanos)};
}

RequestHead HeadOf(const net::Request& request) {
  RequestHead head{request.method_string(), request.target(), {}};
  for (const auto& field : request) head.headers.emplace_back(field.name_string(), field.value());
  return head;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Front::Front(asio::io_context& io, FrontOptions options, std::unique_ptr<Runtime> runtime)
    : io_(io),
      options_(std::move(options)),
      max_concurrency_(options_.api.autoscaling.max_replica_concurrency),
      pool_(
          io,
          {options_.replica_id, options_.socket_dir, options_.api.predictor->processes_per_replica,
           options_.api.predictor->threads_per_process, options_.max_log_line_bytes,
           options_.worker_healthy_after},
          std::move(runtime), queue_),
      metrics_(options_.api.name, options_.replica_id),
      dispatcher_(io, queue_, pool_, metrics_, BatchingOf(options_.api)) {}

absl::StatusOr<std::unique_ptr<Front>> Front::Create(asio::io_context& io, FrontOptions options) {
  RuntimeOptions runtime_options;
  runtime_options.python = options.python;
  runtime_options.runtime_dir = options.runtime_dir;
  runtime_options.spec_path = options.spec_path;
  runtime_options.project_dir = options.project_dir;
  if (!options.api.predictor) {
    return absl::InvalidArgumentError(absl::StrCat(options.api.name, " has no predictor to run"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Runtime> runtime,
                   options.runtime_for(options.api, runtime_options));
  std::unique_ptr<Front> front(new Front(io, std::move(options), std::move(runtime)));
  net::HttpServerOptions server_options;
  server_options.host = front->options_.host;
  server_options.port = front->options_.port;
  server_options.body_limit = kMaxBodyBytes;
  Front* self = front.get();
  auto handler = [self](net::Request& request, net::ClientWatch& client) {
    return self->Handle(request, client);
  };
  ASSIGN_OR_RETURN(front->server_, net::HttpServer::Create(io, server_options, handler));
  if (!front->options_.unix_socket.empty()) {
    server_options.unix_path = front->options_.unix_socket;
    ASSIGN_OR_RETURN(front->unix_server_, net::HttpServer::Create(io, server_options, handler));
  }
  if (!front->options_.lending_socket.empty()) {
    // The borrower's reports are not merged into this front's counts yet (ADR 0005, step 3).
    front->lender_ = std::make_unique<SlotLender>(io, front->queue_, front->pool_, nullptr);
    SlotLender* lender = front->lender_.get();
    front->pool_.OnSlotClosed([lender](int slot) { lender->SlotClosed(slot); });
  }
  return front;
}

absl::Status Front::Start() {
  asio::co_spawn(io_, SampleInFlight(), asio::detached);
  dispatcher_.Start();
  RETURN_IF_ERROR(pool_.Start([this] {
    failed_ = true;
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer->async_wait([this, timer](auto) { io_.stop(); });
  }));
  server_->Start();
  if (unix_server_) unix_server_->Start();
  if (lender_) RETURN_IF_ERROR(lender_->Listen(options_.lending_socket));
  if (!options_.port_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(options_.port_file, std::to_string(server_->port())));
  }
  std::cout << "replica " << options_.replica_id << " listening on " << options_.host << ":"
            << server_->port() << (unix_server_ ? " and " + options_.unix_socket : "")
            << ", starting " << options_.api.predictor->processes_per_replica
            << " worker process(es) with " << options_.api.predictor->threads_per_process
            << " thread(s) each"
            << (lender_ ? ", lending its slots on " + options_.lending_socket : "") << std::endl;
  return absl::OkStatus();
}

asio::awaitable<net::Response> Front::Handle(net::Request& request, net::ClientWatch& client) {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/predict" || path == "/") {
    net::Response response;
    if (request.method() == http::verb::post) {
      response = co_await Predict(request, client);
    } else if (request.method() == http::verb::get && options_.api.predictor->HasModels()) {
      response = co_await Predict(request, client);  // the worker adds the model metadata
    } else if (request.method() == http::verb::get) {
      response = net::MakeResponse(request, http::status::ok, std::string(kGetMessage));
    } else if (request.method() == http::verb::options) {  // CORS preflight, as Cortex's nginx
      response = net::Response{http::status::no_content, request.version()};
      response.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
      response.set(http::field::access_control_allow_headers, "*");
      response.set(http::field::access_control_allow_credentials, "true");
      response.set(http::field::access_control_max_age, "1728000");
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
    } else {
      co_return net::StatusResponse(
          request,
          WithHttpStatus(absl::InvalidArgumentError("use POST to make a prediction"), 405));
    }
    response.set(http::field::access_control_allow_origin, "*");
    co_return response;
  }
  if (path.starts_with("/v2")) {
    // The Open Inference Protocol (docs/v2-protocol.md): the worker serves the model endpoints.
    if (path.starts_with("/v2/models/")) co_return co_await Predict(request, client);
    if (path == "/v2/health/live") {
      co_return net::MakeResponse(request, http::status::ok, R"({"live":true})");
    }
    if (path == "/v2/health/ready") {
      bool ready = Ready();
      co_return net::MakeResponse(request,
                                  ready ? http::status::ok : http::status::service_unavailable,
                                  nlohmann::json{{"ready", ready}}.dump());
    }
    if (path == "/v2") {
      co_return net::MakeResponse(request, http::status::ok, V2ServerMetadata());
    }
  }
  if (path == "/_cortex/ready") {
    bool ready = Ready();
    co_return net::MakeResponse(
        request, ready ? http::status::ok : http::status::service_unavailable,
        nlohmann::json{{"ready", ready}, {"replica_id", options_.replica_id}}.dump());
  }
  if (path == "/_cortex/in_flight") co_return InFlightSamples(request);
  if (path == "/_cortex/stats") {
    co_return net::MakeResponse(
        request, http::status::ok,
        metrics_
            .Stats(in_flight_.in_flight(), static_cast<int64_t>(queue_.waiting()),
                   dispatcher_.running())
            .dump());
  }
  if (path == "/metrics") {
    co_return net::MakeResponse(
        request, http::status::ok,
        metrics_.Prometheus(in_flight_.in_flight(), static_cast<int64_t>(queue_.waiting())) +
            metrics_.ModelsPrometheus(ModelReports()),
        "text/plain; version=0.0.4");
  }
  co_return net::StatusResponse(request, absl::NotFoundError("not found"));
}

std::vector<nlohmann::json> Front::ModelReports() const {
  std::vector<nlohmann::json> reports;
  if (options_.models_manifest.empty()) return reports;
  for (int i = 0; i < options_.api.predictor->processes_per_replica; ++i) {
    auto text = ReadFile(absl::StrCat(options_.models_manifest, ".stats.", i));
    if (!text.ok()) continue;
    nlohmann::json report = nlohmann::json::parse(*text, nullptr, false);
    if (report.is_object()) reports.push_back(std::move(report));
  }
  return reports;
}

asio::awaitable<net::Response> Front::Predict(net::Request& request, net::ClientWatch& client) {
  if (in_flight_.in_flight() >= max_concurrency_) {
    metrics_.Rejected();
    net::Response busy = net::StatusResponse(
        request, absl::UnavailableError(absl::StrCat(
                     "too many requests: this replica already has ", in_flight_.in_flight(),
                     " requests in flight (max_replica_concurrency is ", max_concurrency_, ")")));
    busy.set(http::field::retry_after, "1");
    co_return busy;
  }
  auto admitted = std::chrono::steady_clock::now();
  in_flight_.Change(+1, admitted);
  RequestHead head = HeadOf(request);
  absl::StatusOr<WorkerResponse> result =
      co_await dispatcher_.Run(head, request.body(), client, admitted);
  net::Response response;
  if (!result.ok()) {
    response = net::StatusResponse(request, result.status());
  } else {
    response.version(request.version());
    response.result(result->status);
    if (!result->reason.empty()) response.reason(result->reason);
    // An empty content type means "send no Content-Type" (docs/worker-protocol.md).
    if (!result->content_type.empty()) {
      response.set(http::field::content_type, result->content_type);
    }
    for (const auto& [name, value] : result->headers) response.insert(name, value);
    if (!result->monitor.is_null()) metrics_.Monitored(result->monitor);
    response.body() = std::move(result->body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
  }
  in_flight_.Change(-1, std::chrono::steady_clock::now());
  metrics_.Response(response.result_int(), SecondsSince(admitted));
  co_return response;
}

asio::awaitable<void> Front::SampleInFlight() {
  asio::steady_timer timer(io_);
  // Seconds aligned to the wall clock, so that every replica's samples cover the same seconds.
  int64_t now_ms = UnixNanos() / 1'000'000;
  auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000 - now_ms % 1000);
  int64_t boundary_ms = (now_ms / 1000 + 1) * 1000;  // the wall-clock second `next` ends
  in_flight_.BeginSecond(std::chrono::steady_clock::now());
  while (!stopping_) {
    timer.expires_at(next);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    // Stamped with the second it was scheduled to cover, not the timer's firing time: a late
    // timer must not put two samples of one replica in the same second.
    in_flight_.EndSecond(boundary_ms - 1, std::chrono::steady_clock::now());
    boundary_ms += 1000;
    next += std::chrono::seconds(1);
  }
}

net::Response Front::InFlightSamples(const net::Request& request) const {
  // GET /_cortex/in_flight?since=<unix ms>: the per-second averages after `since`.
  std::string_view target = request.target();
  int64_t since = 0;
  if (size_t at = target.find("since="); at != std::string_view::npos) {
    since = std::atoll(std::string(target.substr(at + 6)).c_str());
  }
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& [time_ms, value] : in_flight_.SamplesAfter(since)) {
    samples.push_back({time_ms, value});
  }
  return net::MakeResponse(request, http::status::ok,
                           nlohmann::json{{"replica_id", options_.replica_id},
                                          {"in_flight", in_flight_.in_flight()},
                                          {"samples", std::move(samples)}}
                               .dump());
}

asio::awaitable<void> Front::Shutdown(int grace_ms) {
  stopping_ = true;
  server_->Stop();
  if (unix_server_) unix_server_->Stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  if (lender_) {
    // The borrower finishes what it sent to the slots and gives them back; then they drain here.
    co_await lender_->Recall(std::chrono::milliseconds(grace_ms));
    lender_->Close();
  }
  asio::steady_timer timer(io_);
  // Drain: requests still arriving on open keep-alive connections are served; stop once none
  // has been in flight for a short quiet period (or the grace period is over).
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    auto now = std::chrono::steady_clock::now();
    if (in_flight_.in_flight() > 0) quiet_since = now;
    if (now - quiet_since >= std::chrono::milliseconds(300)) break;
    timer.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  pool_.Stop();
}

}  // namespace cortex::replica
