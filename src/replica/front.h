// The replica front: the per-replica HTTP server between the gateway and the worker processes.
//
// It admits a request only while fewer than max_replica_concurrency are in flight (queued +
// running; otherwise 503 with Retry-After) and runs it through the Dispatcher (dispatcher.h: one
// FIFO for the slots of the worker pool, worker_pool.h, one frame per request, or server-side
// batches; max_replica_concurrency still counts requests). It reports readiness once every
// worker has finished its predictor's constructor, samples the autoscaling signal
// (in_flight_sampler.h) and counts what it serves (front_metrics.h).
//
// Single-threaded: everything runs on the io_context passed to Create().
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/api_config.h"
#include "net/asio.h"
#include "net/http_server.h"
#include "replica/dispatcher.h"
#include "replica/frame_codec.h"
#include "replica/front_metrics.h"
#include "replica/in_flight_sampler.h"
#include "replica/runtime.h"
#include "replica/slot_lending.h"
#include "replica/slot_queue.h"
#include "replica/worker_pool.h"

namespace cortex::replica {

struct FrontOptions {
  std::string replica_id;
  std::string spec_path;  // JSON: the API config plus project_dir and replica_id
  config::ApiConfig api;  // its decoded configuration
  std::string project_dir;
  std::string models_manifest;  // where the workers' model reports are (beside it); may be empty
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string port_file;    // written (atomically) with the bound port once listening
  std::string unix_socket;  // also listen here (before the port file is written), if set
  std::string python = "/usr/bin/python3";
  std::string runtime_dir;  // holds the cortex_runtime package
  std::string socket_dir;   // where the per-worker Unix sockets go
  // If set, the front lends its free worker slots to one borrower on this socket (ADR 0005,
  // slot_lending.h) and recalls them when it shuts down. While they are lent, requests the front
  // itself receives wait for a slot to come back.
  std::string lending_socket;
  size_t max_log_line_bytes = 64 << 10;  // longer output lines of the predictor are split
  // A worker process that lived this long before it died restarts without the back-off.
  std::chrono::milliseconds worker_healthy_after{60'000};
  // Chooses the runtime (tests give their own).
  std::function<absl::StatusOr<std::unique_ptr<Runtime>>(const config::ApiConfig&,
                                                         const RuntimeOptions&)>
      runtime_for = RuntimeFor;
};

class Front {
 public:
  static absl::StatusOr<std::unique_ptr<Front>> Create(net::asio::io_context& io,
                                                       FrontOptions options);

  // Starts the workers and the HTTP listener, and writes the port file.
  absl::Status Start();
  // Stops accepting, lets in-flight requests finish (up to `grace_ms`), then stops the workers.
  net::asio::awaitable<void> Shutdown(int grace_ms);

  uint16_t port() const { return server_->port(); }
  // Set when a worker failed before becoming ready (the predictor could not start).
  bool failed() const { return failed_; }

 private:
  Front(net::asio::io_context& io, FrontOptions options, std::unique_ptr<Runtime> runtime);

  net::asio::awaitable<net::Response> Handle(net::Request& request, net::ClientWatch& client);
  // Admits (or answers 503) and runs the request through the dispatcher; a request whose client
  // left while it waited for a slot is not run.
  net::asio::awaitable<net::Response> Predict(net::Request& request, net::ClientWatch& client);
  std::vector<nlohmann::json> ModelReports() const;  // the workers' model registry counters
  net::asio::awaitable<void> SampleInFlight();
  net::Response InFlightSamples(const net::Request& request) const;
  bool Ready() const { return !stopping_ && !failed_ && pool_.Ready(); }

  net::asio::io_context& io_;
  FrontOptions options_;
  int max_concurrency_;
  SlotQueue queue_;
  WorkerPool pool_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::HttpServer> unix_server_;  // the same, on options_.unix_socket
  FrontMetrics metrics_;
  Dispatcher dispatcher_;
  std::unique_ptr<SlotLender> lender_;  // with options_.lending_socket only
  InFlightSampler in_flight_;
  bool failed_ = false;
  bool stopping_ = false;
};

}  // namespace cortex::replica
