// Lending a replica's worker slots to another process on the same machine (ADR 0005): the
// replica keeps starting and supervising its workers, and the borrower (the gateway, on the local
// provider) drives the lent slots with its own Dispatcher, without the front's hop.
//
// The lending socket is a Unix SOCK_SEQPACKET socket beside the front's: one message per packet,
// so a slot's connection (SCM_RIGHTS) travels in the packet that names it. A packet is a 12-byte
// head (type, slot, process: big-endian u32) and a payload (JSON; reports only):
//
//   lender → borrower   kLend    a slot, its process, and its connection
//                       kRevoke  the slot's process died: close your copy
//                       kRecall  give every slot back (the replica drains)
//   borrower → lender   kReturn  no request of mine is on the slot and my copy is closed
//                       kBroken  the slot failed mid-request: close it
//                       kReport  the borrower's counts for the replica (JSON), about every second
//
// One side at a time drives a slot. The lender lends a slot only when it is free in the
// replica's queue, so nothing the front sent is on it; the borrower returns one only when it is
// free in the borrower's queue. A borrower that goes away holding slots may have left a request
// half done on any of them: the lender closes them (their worker processes then exit and are
// restarted) and never uses them again. Neither side ever shuts a lent connection down: both
// hold the same connection, and only closing one's own copy is private.
//
// Single-threaded: each side runs on the io_context it is given.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "net/asio.h"
#include "replica/slot_queue.h"
#include "replica/slot_sockets.h"

namespace cortex::replica {

enum class LendingMessage : uint32_t {
  kLend = 1,
  kRevoke = 2,
  kRecall = 3,
  kReturn = 4,
  kBroken = 5,
  kReport = 6,
};

struct LendingPacket {
  LendingMessage type = LendingMessage::kReport;
  int slot = -1;
  int process = -1;
  std::string payload;
  int fd = -1;  // a received connection (kLend only): the receiver owns it
};

// One end of a lending connection. Shared: what it has queued to send keeps it alive.
class LendingChannel : public std::enable_shared_from_this<LendingChannel> {
 public:
  static constexpr size_t kMaxPayload = 60 << 10;

  LendingChannel(net::asio::io_context& io, int fd);  // takes `fd`, a SOCK_SEQPACKET socket
  ~LendingChannel();
  LendingChannel(const LendingChannel&) = delete;
  LendingChannel& operator=(const LendingChannel&) = delete;

  // A new pair of connected ends (tests).
  static absl::StatusOr<std::pair<std::shared_ptr<LendingChannel>, std::shared_ptr<LendingChannel>>>
  Pair(net::asio::io_context& io);
  // Connects to a lender's socket.
  static absl::StatusOr<std::shared_ptr<LendingChannel>> Connect(net::asio::io_context& io,
                                                                 const std::string& path);

  // Sends one packet, after those posted before it, without blocking; with `fd` >= 0 a copy of
  // that descriptor goes with it. A payload over kMaxPayload is refused. When sending fails the
  // channel closes, and Receive says so.
  absl::Status Post(const LendingPacket& packet, int fd = -1);
  // The next packet; an error when the peer has gone or sent something that is not a packet.
  net::asio::awaitable<absl::StatusOr<LendingPacket>> Receive();
  void Close();
  bool is_open() const { return descriptor_.is_open(); }

 private:
  struct Outgoing {
    LendingPacket packet;
    int fd = -1;  // our own copy, closed once sent
  };
  enum class Sent { kYes, kWouldBlock, kFailed };
  Sent SendNow(const LendingPacket& packet, int fd);
  net::asio::awaitable<void> Flush();

  net::asio::posix::stream_descriptor descriptor_;
  std::deque<Outgoing> outgoing_;
  bool flushing_ = false;
};

// The replica's side: lends every free slot of its queue to the one borrower connected, and
// takes them back when recalled.
class SlotLender {
 public:
  // `queue` and `slots` are the replica's (its SlotQueue and WorkerPool). `on_report` gets each
  // report of the borrower.
  SlotLender(net::asio::io_context& io, SlotQueue& queue, SlotSockets& slots,
             std::function<void(const nlohmann::json&)> on_report);
  ~SlotLender();

  // Listens on `path` (a stale socket there is replaced) and takes borrowers, one at a time.
  absl::Status Listen(const std::string& path);
  // Serves one borrower on an already connected channel (Listen does this for each; tests too).
  void Serve(std::shared_ptr<LendingChannel> channel);
  // The replica closed `slot` (its process died, or it broke in the front): a borrower that
  // holds it is told to close its copy.
  void SlotClosed(int slot);
  // Asks the borrower for every slot back. Completes when all are back, when the borrower has
  // gone (its slots are then closed), or after `grace`.
  net::asio::awaitable<void> Recall(std::chrono::milliseconds grace);
  // Stops listening and lets the borrower go (as Recall's end: its slots are closed).
  void Close();

  bool has_borrower() const { return channel_ != nullptr; }
  size_t lent() const { return lent_.size(); }

 private:
  net::asio::awaitable<void> Accept();
  net::asio::awaitable<void> Receive(std::shared_ptr<LendingChannel> channel);
  void LendFreeSlots();
  void DropBorrower();

  net::asio::io_context& io_;
  SlotQueue& queue_;
  SlotSockets& slots_;
  std::function<void(const nlohmann::json&)> on_report_;
  std::string path_;
  std::unique_ptr<net::asio::posix::stream_descriptor> listener_;  // a SOCK_SEQPACKET listener
  std::shared_ptr<LendingChannel> channel_;  // the borrower, if one is connected
  std::set<int> lent_;
  bool recalling_ = false;
  net::asio::steady_timer all_back_;  // cancelled when the last recalled slot is back
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
};

// The borrower's side: a SlotSockets over the slots one lender lent, for a Dispatcher. Slots join
// `queue` (the borrower's own, for this replica) as they come and leave it when revoked.
class LentSlots : public SlotSockets {
 public:
  LentSlots(net::asio::io_context& io, SlotQueue& queue, std::shared_ptr<LendingChannel> channel);
  ~LentSlots() override;

  // Takes the slots the lender lends until it goes away. Then every slot has left the queue,
  // and whoever waits in it must be told (nothing of theirs was sent, so they may go elsewhere).
  net::asio::awaitable<void> Run();
  // Sends the lender a report (JSON, at most LendingChannel::kMaxPayload encoded).
  void Report(const nlohmann::json& report);

  Socket& socket(int slot) override;
  int process_of(int slot) const override;
  // A slot that broke mid-request: closed here, and the lender is told to close it too.
  void CloseSlot(int slot) override;

  size_t held() const;
  // The lender asked for its slots back: the borrower should send no more requests here.
  bool recalled() const { return recalled_; }
  // The lender is gone (Run has returned).
  bool gone() const { return gone_; }

 private:
  struct Slot;
  void ReturnFreeSlots();
  void Drop(int slot);

  net::asio::io_context& io_;
  SlotQueue& queue_;
  std::shared_ptr<LendingChannel> channel_;
  std::vector<std::unique_ptr<Slot>> slots_;  // index = the lender's slot id; null if not held
  bool recalled_ = false;
  bool gone_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
};

}  // namespace cortex::replica
