// The autoscaling signal of one replica: the time-weighted average of its in-flight requests
// (queued + running) over each wall-clock second, for the last 10 minutes. The integral of
// in-flight over time makes each second's sample an exact average (instants sampled at each
// replica's own moments made an API's sum drift by ±1). Pure: the caller passes the time.
// Single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace cortex::replica {

class InFlightSampler {
 public:
  using Clock = std::chrono::steady_clock;

  explicit InFlightSampler(Clock::time_point now = Clock::now()) : since_(now), window_(now) {}

  // Every change of the in-flight count goes through here.
  void Change(int delta, Clock::time_point now);
  // Starts the first second now (what came before is not a sample).
  void BeginSecond(Clock::time_point now);
  // Ends the second stamped `second_end_ms` (unix ms of its last millisecond): its average
  // becomes a sample, and a new second begins.
  void EndSecond(int64_t second_end_ms, Clock::time_point now);

  int64_t in_flight() const { return in_flight_; }
  // (unix ms, average) of the seconds after `since_ms`, oldest first.
  std::vector<std::pair<int64_t, double>> SamplesAfter(int64_t since_ms) const;

 private:
  void Accumulate(Clock::time_point now);

  int64_t in_flight_ = 0;
  double integral_ = 0;       // request-seconds since the current second began
  Clock::time_point since_;   // of the last accumulation
  Clock::time_point window_;  // when the current second began
  std::deque<std::pair<int64_t, double>> samples_;
};

}  // namespace cortex::replica
