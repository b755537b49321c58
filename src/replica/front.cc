#include "replica/front.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "common/process.h"
#include "common/util.h"

namespace cortex::replica {

namespace asio = net::asio;
namespace http = net::http;
using local_stream = asio::local::stream_protocol;

namespace {

// The same limit as the gateway's, so that the gateway is the one to answer 413.
constexpr uint64_t kMaxBodyBytes = 512ull * 1024 * 1024;

constexpr std::string_view kGetMessage =
    R"({"message":"make a prediction by sending a post request to this endpoint with a json payload"})";

uint32_t ReadBigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void AppendBigEndian32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// The request frame header: method, path, query and headers (docs/worker-protocol.md).
std::string EncodeRequestHeader(const net::Request& request) {
  std::string_view target = request.target();
  size_t q = target.find('?');
  nlohmann::json header;
  header["method"] = std::string(request.method_string());
  header["path"] = std::string(target.substr(0, q));
  header["query"] = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& field : request) {
    headers.push_back(
        {absl::AsciiStrToLower(std::string(field.name_string())), std::string(field.value())});
  }
  header["headers"] = std::move(headers);
  // Header values are bytes from the network: replace invalid UTF-8 instead of throwing.
  return header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct Front::Slot {
  int id = 0;
  int worker = 0;
  local_stream::socket socket;
  explicit Slot(asio::io_context& io) : socket(io) {}
};

struct Front::Worker {
  int index = 0;
  pid_t pid = 0;
  std::string socket_path;
  std::unique_ptr<local_stream::acceptor> acceptor;
  int connected = 0;  // slots currently connected
  bool ever_ready = false;
  int restarts = 0;
  std::vector<int> slot_ids;
};

Front::Front(asio::io_context& io, FrontOptions options)
    : io_(io), options_(std::move(options)), child_signals_(io, SIGCHLD) {}

Front::~Front() {
  for (auto& worker : workers_) {
    if (worker->pid > 0) ::kill(worker->pid, SIGKILL);
  }
}

absl::StatusOr<std::unique_ptr<Front>> Front::Create(asio::io_context& io, FrontOptions options) {
  std::unique_ptr<Front> front(new Front(io, std::move(options)));
  const nlohmann::json& predictor = front->options_.spec.at("predictor");
  front->processes_ = predictor.value("processes_per_replica", 1);
  front->threads_ = predictor.value("threads_per_process", 1);
  if (front->options_.spec.contains("autoscaling")) {
    front->max_concurrency_ =
        front->options_.spec["autoscaling"].value("max_replica_concurrency", 1024);
  }
  net::HttpServerOptions server_options;
  server_options.host = front->options_.host;
  server_options.port = front->options_.port;
  server_options.body_limit = kMaxBodyBytes;
  Front* self = front.get();
  auto server = net::HttpServer::Create(
      io, server_options, [self](net::Request& request) { return self->Handle(request); });
  if (!server.ok()) return server.status();
  front->server_ = std::move(*server);
  return front;
}

absl::Status Front::Start() {
  std::filesystem::create_directories(options_.socket_dir);
  asio::co_spawn(io_, WatchChildren(), asio::detached);
  asio::co_spawn(io_, SampleInFlight(), asio::detached);
  for (int i = 0; i < processes_; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->index = i;
    worker->socket_path =
        absl::StrCat(options_.socket_dir, "/", options_.replica_id, "-p", i, ".sock");
    ::unlink(worker->socket_path.c_str());
    worker->acceptor = std::make_unique<local_stream::acceptor>(io_);
    boost::system::error_code ec;
    worker->acceptor->open(local_stream(), ec);
    if (!ec) worker->acceptor->bind(local_stream::endpoint(worker->socket_path), ec);
    if (!ec) worker->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("listening on ", worker->socket_path, ": ", ec.message()));
    }
    workers_.push_back(std::move(worker));
  }
  for (auto& worker : workers_) {
    if (absl::Status st = SpawnWorker(*worker); !st.ok()) return st;
    asio::co_spawn(io_, AcceptSlots(*worker), asio::detached);
  }
  server_->Start();
  if (!options_.port_file.empty()) {
    if (absl::Status st = WriteFileAtomic(options_.port_file, std::to_string(server_->port()));
        !st.ok()) {
      return st;
    }
  }
  std::cout << "replica " << options_.replica_id << " listening on " << options_.host << ":"
            << server_->port() << ", starting " << processes_ << " worker process(es) with "
            << threads_ << " thread(s) each" << std::endl;
  return absl::OkStatus();
}

absl::Status Front::SpawnWorker(Worker& worker) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  SpawnOptions spawn;
  spawn.argv = {options_.python,
                "-u",
                "-m",
                "cortex_runtime.worker",
                "--socket",
                worker.socket_path,
                "--slots",
                std::to_string(threads_),
                "--process-index",
                std::to_string(worker.index),
                "--spec",
                options_.spec_path};
  const char* existing = std::getenv("PYTHONPATH");
  spawn.env["PYTHONPATH"] = existing && *existing
                                ? absl::StrCat(options_.runtime_dir, ":", existing)
                                : options_.runtime_dir;
  spawn.env["PYTHONUNBUFFERED"] = "1";
  spawn.env["CORTEX_REPLICA_ID"] = options_.replica_id;
  spawn.env["CORTEX_PROCESS_INDEX"] = std::to_string(worker.index);
  spawn.env_remove = {"PYTHONHOME"};
  spawn.output_fd = pipe_fds[1];
  spawn.group = SpawnOptions::Group::kInherit;  // one process group per replica
  spawn.die_with_parent = true;
  // `python -m` puts its working directory on sys.path: make it the project, not wherever the
  // cluster happened to be started.
  spawn.working_dir = options_.spec.value("project_dir", std::string());
  auto pid = Spawn(spawn);
  ::close(pipe_fds[1]);
  if (!pid.ok()) {
    ::close(pipe_fds[0]);
    return pid.status();
  }
  worker.pid = *pid;
  asio::co_spawn(io_, PumpOutput(worker, pipe_fds[0]), asio::detached);
  return absl::OkStatus();
}

asio::awaitable<void> Front::PumpOutput(Worker& worker, int fd) {
  asio::posix::stream_descriptor pipe(io_, fd);
  std::string buffer;
  const std::string prefix = absl::StrCat("[", options_.replica_id, " p", worker.index, "] ");
  for (;;) {
    boost::system::error_code ec;
    size_t n = co_await asio::async_read_until(pipe, asio::dynamic_buffer(buffer), '\n',
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!buffer.empty()) std::cout << prefix << buffer << std::endl;
      co_return;
    }
    std::string line = prefix + buffer.substr(0, n);
    buffer.erase(0, n);
    // One write per line keeps lines whole in the shared, O_APPEND log file.
    (void)!::write(STDOUT_FILENO, line.data(), line.size());
  }
}

asio::awaitable<void> Front::AcceptSlots(Worker& worker) {
  while (worker.acceptor->is_open()) {
    auto slot = std::make_unique<Slot>(io_);
    boost::system::error_code ec;
    co_await worker.acceptor->async_accept(slot->socket,
                                           asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    slot->id = static_cast<int>(slots_.size());
    slot->worker = worker.index;
    worker.slot_ids.push_back(slot->id);
    ++worker.connected;
    if (worker.connected >= threads_ && !worker.ever_ready) {
      worker.ever_ready = true;
      std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " is ready"
                << std::endl;
      if (Ready()) std::cout << "replica " << options_.replica_id << " is ready" << std::endl;
    }
    int id = slot->id;
    slots_.push_back(std::move(slot));
    queue_.Add(id);
  }
}

bool Front::Ready() const {
  if (stopping_ || failed_) return false;
  for (const auto& worker : workers_) {
    if (!worker->ever_ready) return false;
  }
  return !workers_.empty();
}

asio::awaitable<void> Front::WatchChildren() {
  for (;;) {
    boost::system::error_code ec;
    co_await child_signals_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& worker : workers_) {
        if (worker->pid == pid) OnWorkerExit(*worker, status);
      }
    }
  }
}

void Front::OnWorkerExit(Worker& worker, int wait_status) {
  worker.pid = 0;
  std::string how = WIFSIGNALED(wait_status)
                        ? absl::StrCat("was killed by signal ", WTERMSIG(wait_status))
                        : absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  for (int id : worker.slot_ids) {
    boost::system::error_code ignored;
    slots_[id]->socket.close(ignored);
    queue_.Remove(id);
  }
  worker.slot_ids.clear();
  worker.connected = 0;
  if (stopping_) return;
  if (!worker.ever_ready) {
    // The predictor could not start: the replica fails as a whole (the operator restarts it).
    std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " " << how
              << " before it was ready; failed to start api" << std::endl;
    failed_ = true;
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer->async_wait([this, timer](auto) { io_.stop(); });
    return;
  }
  ++worker.restarts;
  int delay_ms = std::min(10'000, 250 << std::min(worker.restarts, 6));
  std::cout << "replica " << options_.replica_id << ": worker p" << worker.index << " " << how
            << "; restarting it in " << delay_ms << " ms" << std::endl;
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
  timer->async_wait([this, timer, &worker](auto) {
    if (stopping_) return;
    worker.ever_ready = true;  // it was ready once: the replica stays ready with fewer slots
    if (absl::Status st = SpawnWorker(worker); !st.ok()) {
      std::cout << "replica " << options_.replica_id << ": " << st.message() << std::endl;
    }
  });
}

asio::awaitable<int> Front::AcquireSlot() {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(int)>(
      [this](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        queue_.Acquire([this, shared](int slot) {
          asio::post(io_, [shared, slot]() mutable { (*shared)(slot); });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<net::Response> Front::Handle(net::Request& request) {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/predict" || path == "/") {
    if (request.method() == http::verb::post) {
      net::Response response = co_await Predict(request);
      response.set(http::field::access_control_allow_origin, "*");
      co_return response;
    }
    if (request.method() == http::verb::get) {
      net::Response response =
          net::MakeResponse(request, http::status::ok, std::string(kGetMessage));
      response.set(http::field::access_control_allow_origin, "*");
      co_return response;
    }
    if (request.method() == http::verb::options) {  // CORS preflight, as Cortex's nginx did
      net::Response response{http::status::no_content, request.version()};
      response.set(http::field::access_control_allow_origin, "*");
      response.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
      response.set(http::field::access_control_allow_headers, "*");
      response.set(http::field::access_control_allow_credentials, "true");
      response.set(http::field::access_control_max_age, "1728000");
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      co_return response;
    }
    co_return net::MakeError(request, http::status::method_not_allowed,
                             "use POST to make a prediction");
  }
  if (path == "/_cortex/ready") {
    bool ready = Ready();
    co_return net::MakeResponse(
        request, ready ? http::status::ok : http::status::service_unavailable,
        nlohmann::json{{"ready", ready}, {"replica_id", options_.replica_id}}.dump());
  }
  if (path == "/_cortex/in_flight") co_return InFlightSamples(request);
  if (path == "/_cortex/stats") {
    nlohmann::json stats = {{"replica_id", options_.replica_id},
                            {"in_flight", in_flight_},
                            {"queued", static_cast<int64_t>(queue_.waiting())},
                            {"running", running_},
                            {"code_2xx", responses_2xx_},
                            {"code_4xx", responses_4xx_},
                            {"code_5xx", responses_5xx_},
                            {"rejected", rejected_},
                            {"class_distribution", class_counts_}};
    if (regression_count_ > 0) {
      stats["regression_stats"] = {{"min", regression_min_},
                                   {"max", regression_max_},
                                   {"sum", regression_sum_},
                                   {"sample_count", regression_count_}};
    }
    co_return net::MakeResponse(request, http::status::ok, stats.dump());
  }
  if (path == "/metrics") co_return Metrics(request);
  co_return net::MakeError(request, http::status::not_found, "not found");
}

asio::awaitable<net::Response> Front::Predict(net::Request& request) {
  if (in_flight_ >= max_concurrency_) {
    ++rejected_;
    ++responses_5xx_;
    net::Response busy = net::MakeError(
        request, http::status::service_unavailable,
        absl::StrCat("too many requests: this replica already has ", in_flight_,
                     " requests in flight (max_replica_concurrency is ", max_concurrency_, ")"));
    busy.set(http::field::retry_after, "1");
    co_return busy;
  }
  auto started = std::chrono::steady_clock::now();
  AccountInFlight(+1);
  int slot_id = queue_.TryAcquire();  // the common case needs no trip through the queue
  if (slot_id < 0) slot_id = co_await AcquireSlot();
  queue_time_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  net::Response response;
  if (slot_id < 0) {
    response =
        net::MakeError(request, http::status::service_unavailable, "replica is shutting down");
  } else {
    ++running_;
    Slot& slot = *slots_[slot_id];
    std::string header = EncodeRequestHeader(request);
    std::string prefix;
    AppendBigEndian32(prefix, static_cast<uint32_t>(4 + header.size() + request.body().size()));
    AppendBigEndian32(prefix, static_cast<uint32_t>(header.size()));
    prefix += header;
    std::array<asio::const_buffer, 2> out = {asio::buffer(prefix), asio::buffer(request.body())};
    boost::system::error_code ec;
    co_await asio::async_write(slot.socket, out, asio::redirect_error(asio::use_awaitable, ec));
    unsigned char lengths[8];
    if (!ec) {
      co_await asio::async_read(slot.socket, asio::buffer(lengths),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    std::string rest;
    if (!ec) {
      uint32_t total = ReadBigEndian32(lengths);
      if (total < 4) {
        ec = asio::error::invalid_argument;
      } else {
        rest.resize(total - 4);
        co_await asio::async_read(slot.socket, asio::buffer(rest),
                                  asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    --running_;
    if (ec) {
      boost::system::error_code ignored;
      slot.socket.close(ignored);
      response = net::MakeError(
          request, http::status::bad_gateway,
          absl::StrCat("worker process p", slot.worker, " exited while handling the request"));
    } else {
      queue_.Release(slot_id);
      uint32_t header_length = ReadBigEndian32(lengths + 4);
      auto parsed = nlohmann::json::parse(rest.substr(0, header_length), nullptr, false);
      if (header_length > rest.size() || parsed.is_discarded()) {
        response = net::MakeError(request, http::status::bad_gateway,
                                  "worker process sent a malformed response");
      } else {
        response.version(request.version());
        response.result(parsed.value("status", 200));
        // An empty content type means "send no Content-Type" (docs/worker-protocol.md).
        std::string content_type = parsed.value("content_type", std::string("application/json"));
        if (!content_type.empty()) response.set(http::field::content_type, content_type);
        if (auto it = parsed.find("headers"); it != parsed.end() && it->is_array()) {
          for (const auto& pair : *it) {
            if (pair.is_array() && pair.size() == 2) {
              response.insert(pair[0].get<std::string>(), pair[1].get<std::string>());
            }
          }
        }
        if (auto monitored = parsed.find("monitor"); monitored != parsed.end()) {
          RecordMonitored(*monitored);
        }
        response.body() = rest.substr(header_length);
        response.keep_alive(request.keep_alive());
        response.prepare_payload();
      }
    }
  }
  AccountInFlight(-1);
  unsigned code = response.result_int();
  if (code < 300) {
    ++responses_2xx_;
  } else if (code < 500) {
    ++responses_4xx_;
  } else {
    ++responses_5xx_;
  }
  latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  co_return response;
}

void Front::AccountInFlight(int delta) {
  // The integral of in-flight over time, so that each second's sample is an exact average
  // (instants sampled at each replica's own moments made the API's sum drift by ±1).
  auto now = std::chrono::steady_clock::now();
  in_flight_integral_ += static_cast<double>(in_flight_) *
                         std::chrono::duration<double>(now - in_flight_since_).count();
  in_flight_since_ = now;
  in_flight_ += delta;
}

asio::awaitable<void> Front::SampleInFlight() {
  constexpr size_t kKeep = 600;
  asio::steady_timer timer(io_);
  // Seconds aligned to the wall clock, so that every replica's samples cover the same seconds.
  int64_t now_ms = UnixNanos() / 1'000'000;
  auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000 - now_ms % 1000);
  int64_t boundary_ms = (now_ms / 1000 + 1) * 1000;  // the wall-clock second `next` ends
  AccountInFlight(0);
  in_flight_integral_ = 0;
  auto window_start = in_flight_since_;
  while (!stopping_) {
    timer.expires_at(next);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    AccountInFlight(0);
    double seconds = std::chrono::duration<double>(in_flight_since_ - window_start).count();
    double average = seconds > 0 ? in_flight_integral_ / seconds : in_flight_;
    // Stamped with the second it was scheduled to cover, not the timer's firing time: a late
    // timer must not put two samples of one replica in the same second.
    in_flight_samples_.emplace_back(boundary_ms - 1, average);
    boundary_ms += 1000;
    if (in_flight_samples_.size() > kKeep) in_flight_samples_.pop_front();
    in_flight_integral_ = 0;
    window_start = in_flight_since_;
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
  for (const auto& [time_ms, value] : in_flight_samples_) {
    if (time_ms > since) samples.push_back({time_ms, value});
  }
  return net::MakeResponse(request, http::status::ok,
                           nlohmann::json{{"replica_id", options_.replica_id},
                                          {"in_flight", in_flight_},
                                          {"samples", std::move(samples)}}
                               .dump());
}

void Front::RecordMonitored(const nlohmann::json& value) {
  constexpr size_t kMaxClasses = 1000;  // a runaway label space must not grow without bound
  if (value.is_string()) {
    const std::string& label = value.get_ref<const std::string&>();
    if (class_counts_.size() < kMaxClasses || class_counts_.count(label) > 0) {
      ++class_counts_[label];
    }
  } else if (value.is_number()) {
    double v = value.get<double>();
    regression_min_ = regression_count_ == 0 ? v : std::min(regression_min_, v);
    regression_max_ = regression_count_ == 0 ? v : std::max(regression_max_, v);
    regression_sum_ += v;
    ++regression_count_;
  }
}

net::Response Front::Metrics(const net::Request& request) const {
  std::string api = options_.spec.value("name", std::string());
  std::string labels = absl::StrFormat(R"(api="%s",replica="%s")", api, options_.replica_id);
  std::string text;
  absl::StrAppendFormat(&text,
                        "# TYPE cortex_replica_in_flight gauge\ncortex_replica_in_flight{%s} %d\n",
                        labels, in_flight_);
  absl::StrAppendFormat(&text, "# TYPE cortex_replica_queued gauge\ncortex_replica_queued{%s} %d\n",
                        labels, queue_.waiting());
  absl::StrAppendFormat(&text, "# TYPE cortex_replica_requests_total counter\n");
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"2XX\"} %d\n", labels,
                        responses_2xx_);
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"4XX\"} %d\n", labels,
                        responses_4xx_);
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"5XX\"} %d\n", labels,
                        responses_5xx_);
  absl::StrAppendFormat(&text,
                        "# TYPE cortex_replica_rejected_total counter\n"
                        "cortex_replica_rejected_total{%s} %d\n",
                        labels, rejected_);
  text += "# TYPE cortex_replica_request_duration_seconds histogram\n";
  text += latency_.Prometheus("cortex_replica_request_duration_seconds", labels);
  text += "# TYPE cortex_replica_queue_time_seconds histogram\n";
  text += queue_time_.Prometheus("cortex_replica_queue_time_seconds", labels);
  return net::MakeResponse(request, http::status::ok, std::move(text), "text/plain; version=0.0.4");
}

asio::awaitable<void> Front::Shutdown(int grace_ms) {
  stopping_ = true;
  server_->Stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  asio::steady_timer timer(io_);
  // Drain: requests still arriving on open keep-alive connections are served; stop once none
  // has been in flight for a short quiet period (or the grace period is over).
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    auto now = std::chrono::steady_clock::now();
    if (in_flight_ > 0) quiet_since = now;
    if (now - quiet_since >= std::chrono::milliseconds(300)) break;
    timer.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  queue_.Close();
  for (auto& worker : workers_) {
    if (worker->pid > 0) ::kill(worker->pid, SIGTERM);
    boost::system::error_code ignored;
    worker->acceptor->close(ignored);
    ::unlink(worker->socket_path.c_str());
  }
  for (auto& slot : slots_) {
    boost::system::error_code ignored;
    slot->socket.close(ignored);
  }
  child_signals_.cancel();
}

}  // namespace cortex::replica
