// The front's single FIFO of requests waiting for a free slot, and the set of free slots.
//
// A request that finds no free slot waits in one queue shared by every worker process (Cortex
// kept a queue per process, so one slow process could hold requests while another sat idle).
// Single-threaded: every call happens on the front's io_context thread.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_set>
#include <vector>

namespace cortex::replica {

class SlotQueue {
 public:
  using Waiter = std::function<void(int slot)>;  // called with a slot id, or -1 when closed

  // Gives `waiter` a free slot now, or queues it (FIFO) until one is released.
  void Acquire(Waiter waiter);
  // A free slot without waiting, or -1 (also when requests are already waiting: FIFO holds).
  int TryAcquire();
  // Returns a slot to the pool, handing it straight to the oldest waiter if there is one. A
  // slot that was removed while it was in use (its worker died) is not returned.
  void Release(int slot);
  // A slot that joined (a worker connected) or left (its connection broke).
  void Add(int slot);
  void Remove(int slot);
  // Fails every waiter with -1 (shutdown).
  void Close();
  // Called each time a slot becomes free with no request waiting for it (it may take it with
  // TryAcquire): how the slot lender (slot_lending.h) learns of slots to lend.
  void OnFree(std::function<void()> on_free) { on_free_ = std::move(on_free); }

  size_t waiting() const { return waiters_.size(); }
  size_t free_slots() const { return free_.size(); }

 private:
  std::deque<Waiter> waiters_;
  std::vector<int> free_;            // LIFO: the most recently used slot is the warmest
  std::unordered_set<int> members_;  // added and not removed: free or in use
  bool closed_ = false;
  std::function<void()> on_free_;
};

}  // namespace cortex::replica
