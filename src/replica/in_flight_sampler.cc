#include "replica/in_flight_sampler.h"

namespace cortex::replica {

namespace {
constexpr size_t kKeep = 600;
}  // namespace

void InFlightSampler::Accumulate(Clock::time_point now) {
  integral_ +=
      static_cast<double>(in_flight_) * std::chrono::duration<double>(now - since_).count();
  since_ = now;
}

void InFlightSampler::Change(int delta, Clock::time_point now) {
  Accumulate(now);
  in_flight_ += delta;
}

void InFlightSampler::BeginSecond(Clock::time_point now) {
  Accumulate(now);
  integral_ = 0;
  window_ = now;
}

void InFlightSampler::EndSecond(int64_t second_end_ms, Clock::time_point now) {
  Accumulate(now);
  double seconds = std::chrono::duration<double>(now - window_).count();
  double average = seconds > 0 ? integral_ / seconds : static_cast<double>(in_flight_);
  samples_.emplace_back(second_end_ms, average);
  if (samples_.size() > kKeep) samples_.pop_front();
  integral_ = 0;
  window_ = now;
}

std::vector<std::pair<int64_t, double>> InFlightSampler::SamplesAfter(int64_t since_ms) const {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& sample : samples_) {
    if (sample.first > since_ms) out.push_back(sample);
  }
  return out;
}

}  // namespace cortex::replica
