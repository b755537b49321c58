// The worker processes of one replica and their slots: P processes started through the runtime
// port, each connecting T times to its own Unix socket (one connection per slot). Slots join the
// replica's SlotQueue as they connect and leave it when their process dies; a process that dies
// after it was ready is restarted with back-off, one that dies before fails the replica. Their
// output lines are prefixed with the replica and process. Single-threaded (the front's
// io_context).
#pragma once

#include <absl/status/status.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/asio.h"
#include "replica/runtime.h"
#include "replica/slot_queue.h"
#include "replica/slot_sockets.h"

namespace cortex::replica {

struct WorkerPoolOptions {
  std::string replica_id;
  std::string socket_dir;
  int processes = 1;
  int threads = 1;                   // slots per process
  size_t max_line_bytes = 64 << 10;  // longer output lines of the processes are written in pieces
  // A process that lived this long before it died was healthy: its restart back-off starts anew.
  std::chrono::milliseconds healthy_after{60'000};
};

class WorkerPool : public SlotSockets {
 public:
  WorkerPool(net::asio::io_context& io, WorkerPoolOptions options, std::unique_ptr<Runtime> runtime,
             SlotQueue& queue);
  ~WorkerPool() override;

  // Binds the sockets and starts every process. `on_failed` runs when a process dies before
  // it was ready (the predictor could not start).
  absl::Status Start(std::function<void()> on_failed);
  // SIGTERM to every process; closes the sockets and slots.
  void Stop();

  // Every process has connected all its slots at least once, and one is connected now (a
  // replica whose every process is down, restarting, takes no requests).
  bool Ready() const;
  Socket& socket(int slot) override;
  int process_of(int slot) const override;
  void CloseSlot(int slot) override;
  // Called with each slot closed (its process died or its connection broke): the slot lender
  // (slot_lending.h) tells its borrower.
  void OnSlotClosed(std::function<void(int)> on_closed) { on_slot_closed_ = std::move(on_closed); }

 private:
  struct Slot;
  struct Worker;

  absl::Status Spawn(Worker& worker);
  net::asio::awaitable<void> AcceptSlots(Worker& worker);
  net::asio::awaitable<void> PumpOutput(Worker& worker, int fd);
  net::asio::awaitable<void> WatchChildren();
  void OnExit(Worker& worker, int wait_status);

  net::asio::io_context& io_;
  const WorkerPoolOptions options_;
  std::unique_ptr<Runtime> runtime_;
  SlotQueue& queue_;
  std::function<void()> on_failed_;
  std::function<void(int)> on_slot_closed_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Slot>> slots_;  // index = slot id (never reused)
  net::asio::signal_set child_signals_;
  bool stopping_ = false;
};

}  // namespace cortex::replica
