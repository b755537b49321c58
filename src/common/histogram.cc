#include "common/histogram.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

namespace cortex {

void LatencyHistogram::Observe(double seconds) {
  size_t b = 0;
  while (b < kBounds.size() && seconds > kBounds[b]) ++b;
  ++buckets_[b];
  sum_ += seconds;
  ++count_;
}

double LatencyHistogram::Quantile(const Buckets& buckets, double q) {
  int64_t total = 0;
  for (int64_t n : buckets) total += n;
  if (total <= 0) return -1;
  double rank = q * static_cast<double>(total);
  int64_t below = 0;
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b] > 0 && static_cast<double>(below + buckets[b]) >= rank) {
      if (b == kBounds.size()) return kBounds.back();
      double lower = b == 0 ? 0 : kBounds[b - 1];
      double fraction = (rank - static_cast<double>(below)) / static_cast<double>(buckets[b]);
      return lower + (kBounds[b] - lower) * fraction;
    }
    below += buckets[b];
  }
  return kBounds.back();
}

std::string LatencyHistogram::Prometheus(const std::string& name, const std::string& labels) const {
  std::string text;
  int64_t cumulative = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    cumulative += buckets_[b];
    std::string le = b < kBounds.size() ? absl::StrCat(kBounds[b]) : "+Inf";
    absl::StrAppendFormat(&text, "%s_bucket{%s,le=\"%s\"} %d\n", name, labels, le, cumulative);
  }
  absl::StrAppendFormat(&text, "%s_sum{%s} %g\n%s_count{%s} %d\n", name, labels, sum_, name, labels,
                        count_);
  return text;
}

}  // namespace cortex
