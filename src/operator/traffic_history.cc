#include "operator/traffic_history.h"

#include <algorithm>

#include "common/json_fields.h"

namespace cortex::op {

using nlohmann::json;

void TrafficHistory::Record(int64_t now_ms, const json& gateway_stats) {
  if (!gateway_stats.is_object()) return;  // the gateway did not answer: keep what we have
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::deque<Snapshot>> kept;
  for (const auto& [name, stats] : gateway_stats.items()) {
    if (!stats.is_object()) continue;
    Snapshot s;
    s.time_ms = now_ms;
    s.metrics_key = StringField(stats, "metrics_key");
    s.code_2xx = IntField(stats, "code_2xx");
    s.code_4xx = IntField(stats, "code_4xx");
    s.code_5xx = IntField(stats, "code_5xx");
    json buckets = stats.value("latency_buckets", json::array());
    if (buckets.is_array() && buckets.size() == s.buckets.size()) {
      for (size_t b = 0; b < s.buckets.size(); ++b) {
        s.buckets[b] = buckets[b].is_number_integer() ? buckets[b].get<int64_t>() : 0;
      }
    }
    std::deque<Snapshot>& series = kept[name];
    if (auto it = apis_.find(name); it != apis_.end()) series = std::move(it->second);
    series.push_back(std::move(s));
    while (!series.empty() && series.front().time_ms < now_ms - window_ms_) series.pop_front();
  }
  apis_ = std::move(kept);
}

json TrafficHistory::Series(const std::string& api) const {
  absl::MutexLock lock(&mu_);
  json out = json::array();
  auto it = apis_.find(api);
  if (it == apis_.end()) return out;
  const std::deque<Snapshot>& series = it->second;
  for (size_t i = 1; i < series.size(); ++i) {
    const Snapshot& a = series[i - 1];
    const Snapshot& b = series[i];
    int64_t d2 = b.code_2xx - a.code_2xx, d4 = b.code_4xx - a.code_4xx,
            d5 = b.code_5xx - a.code_5xx;
    if (a.metrics_key != b.metrics_key || d2 < 0 || d4 < 0 || d5 < 0) continue;  // restarted
    LatencyHistogram::Buckets delta{};
    for (size_t k = 0; k < delta.size(); ++k)
      delta[k] = std::max<int64_t>(0, b.buckets[k] - a.buckets[k]);
    double seconds = static_cast<double>(b.time_ms - a.time_ms) / 1000.0;
    if (seconds <= 0) continue;
    double p50 = LatencyHistogram::Quantile(delta, 0.5);
    double p99 = LatencyHistogram::Quantile(delta, 0.99);
    out.push_back({{"time", b.time_ms},
                   {"seconds", seconds},
                   {"requests_per_second", static_cast<double>(d2 + d4 + d5) / seconds},
                   {"code_2xx", d2},
                   {"code_4xx", d4},
                   {"code_5xx", d5},
                   {"p50_ms", p50 < 0 ? json() : json(p50 * 1000)},
                   {"p99_ms", p99 < 0 ? json() : json(p99 * 1000)}});
  }
  return out;
}

}  // namespace cortex::op
