// The replica front: the per-replica HTTP server between the gateway and the worker processes.
//
// It admits a request only while fewer than max_replica_concurrency are in flight (queued +
// running; otherwise 503 with Retry-After), queues it in one FIFO, and hands it to the first
// free slot (a connection to a worker process; see docs/worker-protocol.md). It starts, watches
// and restarts the worker processes, prefixes their output lines, and reports readiness once
// every worker has finished its predictor's constructor.
//
// Single-threaded: everything runs on the io_context passed to Create().
#pragma once

#include <absl/status/statusor.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "net/asio.h"
#include "net/http_server.h"
#include "replica/slot_queue.h"

namespace cortex::replica {

struct FrontOptions {
  std::string replica_id;
  std::string spec_path;  // JSON: the API config plus project_dir and replica_id
  nlohmann::json spec;    // its parsed contents
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string port_file;  // written (atomically) with the bound port once listening
  std::string python = "/usr/bin/python3";
  std::string runtime_dir;  // holds the cortex_runtime package
  std::string socket_dir;   // where the per-worker Unix sockets go
};

class Front {
 public:
  static absl::StatusOr<std::unique_ptr<Front>> Create(net::asio::io_context& io,
                                                       FrontOptions options);
  ~Front();

  // Starts the workers and the HTTP listener, and writes the port file.
  absl::Status Start();
  // Stops accepting, lets in-flight requests finish (up to `grace_ms`), then stops the workers.
  net::asio::awaitable<void> Shutdown(int grace_ms);

  uint16_t port() const { return server_->port(); }
  // Set when a worker failed before becoming ready (the predictor could not start).
  bool failed() const { return failed_; }

 private:
  struct Slot;
  struct Worker;
  explicit Front(net::asio::io_context& io, FrontOptions options);

  net::asio::awaitable<net::Response> Handle(net::Request& request);
  net::asio::awaitable<net::Response> Predict(net::Request& request);
  net::asio::awaitable<int> AcquireSlot();
  net::Response Metrics(const net::Request& request) const;

  absl::Status SpawnWorker(Worker& worker);
  net::asio::awaitable<void> AcceptSlots(Worker& worker);
  net::asio::awaitable<void> PumpOutput(Worker& worker, int fd);
  net::asio::awaitable<void> WatchChildren();
  void OnWorkerExit(Worker& worker, int wait_status);
  bool Ready() const;

  net::asio::io_context& io_;
  FrontOptions options_;
  int processes_ = 1;
  int threads_ = 1;
  int max_concurrency_ = 1024;
  std::unique_ptr<net::HttpServer> server_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Slot>> slots_;  // index = slot id
  SlotQueue queue_;
  net::asio::signal_set child_signals_;
  bool failed_ = false;
  bool stopping_ = false;

  // Counters (also served at /metrics).
  int64_t in_flight_ = 0;  // admitted and not yet answered: queued + running
  int64_t running_ = 0;
  int64_t responses_2xx_ = 0, responses_4xx_ = 0, responses_5xx_ = 0, rejected_ = 0;
  LatencyHistogram latency_;     // admission to response
  LatencyHistogram queue_time_;  // admission to a free slot

  // Prediction monitoring (spec §10), from the "monitor" value of worker responses.
  void RecordMonitored(const nlohmann::json& value);

  // The autoscaling signal: the time-weighted average of in-flight requests over each
  // wall-clock second, as (unix ms at the end of the second, average), the last 10 minutes.
  net::asio::awaitable<void> SampleInFlight();
  void AccountInFlight(int delta);  // every change of in_flight_ goes through here
  double in_flight_integral_ = 0;   // request-seconds since the current second began
  std::chrono::steady_clock::time_point in_flight_since_ = std::chrono::steady_clock::now();
  net::Response InFlightSamples(const net::Request& request) const;
  std::deque<std::pair<int64_t, double>> in_flight_samples_;
  std::map<std::string, int64_t> class_counts_;
  double regression_min_ = 0, regression_max_ = 0, regression_sum_ = 0;
  int64_t regression_count_ = 0;
};

}  // namespace cortex::replica
