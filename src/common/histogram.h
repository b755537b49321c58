// A latency histogram in seconds with fixed Prometheus-style buckets (500 µs to 10 s).
// Thread-compatible: each owner updates it from one thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cortex {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  using Buckets = std::array<int64_t, kBounds.size() + 1>;  // per bucket; the last one is +Inf

  void Observe(double seconds);
  double sum() const { return sum_; }
  int64_t count() const { return count_; }
  const Buckets& buckets() const { return buckets_; }

  // The q-quantile (0 < q < 1) of the observations counted in `buckets`, interpolated linearly
  // within its bucket as Prometheus' histogram_quantile does (the first bucket from 0; a quantile
  // in +Inf is the largest bound). Negative when the buckets are empty.
  static double Quantile(const Buckets& buckets, double q);

  // The _bucket, _sum and _count lines of metric `name` with `labels` (`key="value",...`).
  std::string Prometheus(const std::string& name, const std::string& labels) const;

 private:
  Buckets buckets_{};
  double sum_ = 0;
  int64_t count_ = 0;
};

}  // namespace cortex
