// Server-side batching's queue (docs/batching.md): the requests of a replica waiting to be
// batched, oldest first, and the rule that lets a batch leave.
//
// A batch leaves when it holds `max_batch_size` requests or `interval` has passed since its
// oldest request arrived, whichever comes first. The front asks only once it has a free slot,
// so a backlog leaves as full batches at once, and a lone request waits at most `interval`.
// Requests whose client has gone are dropped when the batch is taken, so they never take a
// place in it. Pure and single-threaded; the front owns the timers.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace cortex::replica {

template <typename T>
class Batcher {
 public:
  using Clock = std::chrono::steady_clock;

  Batcher(size_t max_batch_size, Clock::duration interval)
      : max_batch_size_(max_batch_size), interval_(interval) {}

  void Push(T item, Clock::time_point arrived) { waiting_.push_back({arrived, std::move(item)}); }

  bool empty() const { return waiting_.empty(); }
  size_t size() const { return waiting_.size(); }
  bool full() const { return waiting_.size() >= max_batch_size_; }
  size_t max_batch_size() const { return max_batch_size_; }

  // When the oldest request's batch must leave, or nullopt when none is waiting.
  std::optional<Clock::time_point> Deadline() const {
    if (waiting_.empty()) return std::nullopt;
    return waiting_.front().first + interval_;
  }
  // True when a batch may leave at `now`.
  bool Ready(Clock::time_point now) const { return full() || (!empty() && now >= *Deadline()); }

  // The next batch: up to max_batch_size requests for which `gone` is false, oldest first. The
  // requests met on the way for which `gone` is true are moved to `dropped`.
  template <typename Gone>
  std::vector<T> Take(Gone&& gone, std::vector<T>& dropped) {
    std::vector<T> batch;
    while (!waiting_.empty() && batch.size() < max_batch_size_) {
      T item = std::move(waiting_.front().second);
      waiting_.pop_front();
      (gone(item) ? dropped : batch).push_back(std::move(item));
    }
    return batch;
  }

  // Every waiting request, oldest first (shutdown).
  std::vector<T> TakeAll() {
    std::vector<T> all;
    for (auto& [arrived, item] : waiting_) all.push_back(std::move(item));
    waiting_.clear();
    return all;
  }

 private:
  const size_t max_batch_size_;
  const Clock::duration interval_;
  std::deque<std::pair<Clock::time_point, T>> waiting_;
};

}  // namespace cortex::replica
