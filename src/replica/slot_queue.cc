#include "replica/slot_queue.h"

#include <algorithm>

namespace cortex::replica {

void SlotQueue::Acquire(Waiter waiter) {
  if (closed_) {
    waiter(-1);
    return;
  }
  if (!free_.empty()) {
    int slot = free_.back();
    free_.pop_back();
    waiter(slot);
    return;
  }
  waiters_.push_back(std::move(waiter));
}

int SlotQueue::TryAcquire() {
  if (closed_ || free_.empty() || !waiters_.empty()) return -1;
  int slot = free_.back();
  free_.pop_back();
  return slot;
}

void SlotQueue::Add(int slot) {
  members_.insert(slot);
  Release(slot);
}

void SlotQueue::Release(int slot) {
  if (members_.count(slot) == 0) return;
  if (!waiters_.empty()) {
    Waiter next = std::move(waiters_.front());
    waiters_.pop_front();
    next(slot);
    return;
  }
  free_.push_back(slot);
  if (on_free_ && !closed_) on_free_();
}

void SlotQueue::Remove(int slot) {
  members_.erase(slot);
  free_.erase(std::remove(free_.begin(), free_.end(), slot), free_.end());
}

void SlotQueue::Close() {
  closed_ = true;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w(-1);
}

}  // namespace cortex::replica
