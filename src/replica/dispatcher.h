// The way from a replica's admitted requests to its worker slots, below the HTTP front.
//
// Each request waits in the replica's one FIFO (SlotQueue) for a free slot and makes one frame
// round trip (frame_codec.h) to it. With server-side batching (docs/batching.md) requests wait
// in a Batcher instead: one dispatcher takes a free slot, lets the batch fill until it is full or
// its oldest request has waited batch_interval, and sends it to that slot as one batch frame. A
// request whose client left before its turn is not run; a slot whose connection breaks leaves
// the pool.
//
// It knows no HTTP and admits everything it is given: its caller decides admission
// (max_replica_concurrency) and turns the WorkerResponse into an answer. The slots' connections
// come through the SlotSockets port, so that whoever holds them (today the replica's WorkerPool)
// can drive them with the same code. Single-threaded: everything runs on the io_context passed
// to the constructor.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.h"
#include "net/http_server.h"
#include "replica/batcher.h"
#include "replica/frame_codec.h"
#include "replica/front_metrics.h"
#include "replica/slot_queue.h"
#include "replica/slot_sockets.h"

namespace cortex::replica {

struct BatchingOptions {
  size_t max_batch_size = 1;
  std::chrono::nanoseconds interval{0};
};

class Dispatcher {
 public:
  using Clock = std::chrono::steady_clock;

  // `batching` turns on server-side batching. `metrics` counts the time requests queued, the
  // ones abandoned by their client and the batch sizes.
  Dispatcher(net::asio::io_context& io, SlotQueue& queue, SlotSockets& slots, FrontMetrics& metrics,
             std::optional<BatchingOptions> batching);

  // Starts the batch dispatcher (with batching; it runs for the io_context's lifetime).
  void Start();

  // Runs one admitted request: its head and body must stay valid until it returns. An error's
  // HTTP status says what happened (499: the client left before its turn; 502: the slot broke
  // or answered garbage; 503: shutting down).
  net::asio::awaitable<absl::StatusOr<WorkerResponse>> Run(const RequestHead& head,
                                                           std::string_view body,
                                                           net::ClientWatch& client,
                                                           Clock::time_point admitted);

  // Requests sent to a slot and not answered yet.
  int64_t running() const { return running_; }

 private:
  // A request waiting to be batched, and then its result.
  struct Pending {
    explicit Pending(net::asio::io_context& io) : done(io, Clock::time_point::max()) {}
    const RequestHead* head = nullptr;
    std::string_view body;
    net::ClientWatch* client = nullptr;
    Clock::time_point admitted;
    absl::StatusOr<WorkerResponse> result = absl::UnknownError("not run");
    bool completed = false;
    net::asio::steady_timer done;  // cancelled by Complete(): wakes the request's RunBatched
  };

  net::asio::awaitable<absl::StatusOr<WorkerResponse>> RunBatched(const RequestHead& head,
                                                                  std::string_view body,
                                                                  net::ClientWatch& client,
                                                                  Clock::time_point admitted);
  // Forms batches and sends each to a free slot.
  net::asio::awaitable<void> DispatchBatches();
  net::asio::awaitable<void> RunBatch(int slot, std::vector<std::shared_ptr<Pending>> batch);
  void Complete(Pending& pending, absl::StatusOr<WorkerResponse> result);
  // Writes `out` to the slot and reads one response frame: its first 8 bytes and the rest. A
  // broken slot leaves the pool; a good one is released.
  net::asio::awaitable<absl::StatusOr<std::string>> RoundTrip(
      int slot, std::span<const net::asio::const_buffer> out, unsigned char (&lengths)[8]);
  net::asio::awaitable<int> AcquireSlot();

  net::asio::io_context& io_;
  SlotQueue& queue_;
  SlotSockets& slots_;
  FrontMetrics& metrics_;
  std::optional<Batcher<std::shared_ptr<Pending>>> batcher_;  // with server-side batching only
  net::asio::steady_timer batch_wake_;  // the dispatcher's wait: cancelled when it may go on
  int64_t running_ = 0;
};

}  // namespace cortex::replica
