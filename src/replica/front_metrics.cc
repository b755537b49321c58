#include "replica/front_metrics.h"

#include <absl/strings/str_format.h>

#include <algorithm>
#include <iterator>

namespace cortex::replica {
namespace {

// Upper bounds of the batch-size histogram's buckets (max_batch_size is at most 1024).
constexpr int64_t kBatchSizeBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

}  // namespace

void FrontMetrics::Batch(size_t size) {
  if (batch_sizes_.empty()) batch_sizes_.assign(std::size(kBatchSizeBuckets) + 1, 0);
  size_t bucket = 0;
  while (bucket < std::size(kBatchSizeBuckets) &&
         static_cast<int64_t>(size) > kBatchSizeBuckets[bucket]) {
    ++bucket;
  }
  ++batch_sizes_[bucket];
  ++batches_;
  batched_requests_ += static_cast<int64_t>(size);
}

void FrontMetrics::Response(unsigned status, double seconds) {
  if (status < 300) {
    ++responses_2xx_;
  } else if (status < 500) {
    ++responses_4xx_;
  } else {
    ++responses_5xx_;
  }
  latency_.Observe(seconds);
}

void FrontMetrics::Monitored(const nlohmann::json& value) {
  constexpr size_t kMaxClasses = 1000;  // a runaway label space must not grow without bound
  if (value.is_string()) {
    const std::string& label = value.get_ref<const std::string&>();
    if (class_counts_.size() < kMaxClasses || class_counts_.count(label) > 0) {
      ++class_counts_[label];
    }
  } else if (value.is_number()) {
    double v = value.get<double>();
    regression_min_ = regression_count_ == 0 ? v : std::min(regression_min_, v);
    regression_max_ = regression_count_ == 0 ? v : std::max(regression_max_, v);
    regression_sum_ += v;
    ++regression_count_;
  }
}

nlohmann::json FrontMetrics::Stats(int64_t in_flight, int64_t queued, int64_t running) const {
  nlohmann::json stats = {{"replica_id", replica_id_},  {"in_flight", in_flight},
                          {"queued", queued},           {"running", running},
                          {"code_2xx", responses_2xx_}, {"code_4xx", responses_4xx_},
                          {"code_5xx", responses_5xx_}, {"rejected", rejected_},
                          {"abandoned", abandoned_},    {"class_distribution", class_counts_}};
  if (batches_ > 0) {
    stats["batches"] = batches_;
    stats["batched_requests"] = batched_requests_;
  }
  if (regression_count_ > 0) {
    stats["regression_stats"] = {{"min", regression_min_},
                                 {"max", regression_max_},
                                 {"sum", regression_sum_},
                                 {"sample_count", regression_count_}};
  }
  return stats;
}

std::string FrontMetrics::Prometheus(int64_t in_flight, int64_t queued) const {
  std::string labels = absl::StrFormat(R"(api="%s",replica="%s")", api_, replica_id_);
  std::string text;
  absl::StrAppendFormat(&text,
                        "# TYPE cortex_replica_in_flight gauge\ncortex_replica_in_flight{%s} %d\n",
                        labels, in_flight);
  absl::StrAppendFormat(&text, "# TYPE cortex_replica_queued gauge\ncortex_replica_queued{%s} %d\n",
                        labels, queued);
  absl::StrAppendFormat(&text, "# TYPE cortex_replica_requests_total counter\n");
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"2XX\"} %d\n", labels,
                        responses_2xx_);
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"4XX\"} %d\n", labels,
                        responses_4xx_);
  absl::StrAppendFormat(&text, "cortex_replica_requests_total{%s,code=\"5XX\"} %d\n", labels,
                        responses_5xx_);
  absl::StrAppendFormat(&text,
                        "# TYPE cortex_replica_rejected_total counter\n"
                        "cortex_replica_rejected_total{%s} %d\n",
                        labels, rejected_);
  absl::StrAppendFormat(&text,
                        "# TYPE cortex_replica_abandoned_total counter\n"
                        "cortex_replica_abandoned_total{%s} %d\n",
                        labels, abandoned_);
  text += "# TYPE cortex_replica_request_duration_seconds histogram\n";
  text += latency_.Prometheus("cortex_replica_request_duration_seconds", labels);
  text += "# TYPE cortex_replica_queue_time_seconds histogram\n";
  text += queue_time_.Prometheus("cortex_replica_queue_time_seconds", labels);
  if (batches_ > 0) {
    text += "# TYPE cortex_replica_batch_size histogram\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i < std::size(kBatchSizeBuckets); ++i) {
      cumulative += batch_sizes_[i];
      absl::StrAppendFormat(&text, "cortex_replica_batch_size_bucket{%s,le=\"%d\"} %d\n", labels,
                            kBatchSizeBuckets[i], cumulative);
    }
    absl::StrAppendFormat(&text, "cortex_replica_batch_size_bucket{%s,le=\"+Inf\"} %d\n", labels,
                          batches_);
    absl::StrAppendFormat(&text, "cortex_replica_batch_size_sum{%s} %d\n", labels,
                          batched_requests_);
    absl::StrAppendFormat(&text, "cortex_replica_batch_size_count{%s} %d\n", labels, batches_);
  }
  return text;
}

std::string FrontMetrics::ModelsPrometheus(const std::vector<nlohmann::json>& reports) const {
  if (reports.empty()) return "";
  struct Metric {
    const char* key;
    const char* name;
    const char* type;
  };
  static constexpr Metric kMetrics[] = {
      {"hits", "cortex_model_cache_hits_total", "counter"},
      {"misses", "cortex_model_cache_misses_total", "counter"},
      {"evictions", "cortex_model_cache_evictions_total", "counter"},
      {"loads", "cortex_model_loads_total", "counter"},
      {"load_failures", "cortex_model_load_failures_total", "counter"},
      {"loaded", "cortex_models_loaded", "gauge"},
      {"resident_bytes", "cortex_model_resident_bytes", "gauge"},
  };
  std::string labels = absl::StrFormat(R"(api="%s",replica="%s")", api_, replica_id_);
  std::string text;
  for (const Metric& metric : kMetrics) {
    int64_t total = 0;
    for (const nlohmann::json& report : reports) {
      auto it = report.find(metric.key);
      if (it != report.end() && it->is_number_integer()) total += it->get<int64_t>();
    }
    absl::StrAppendFormat(&text, "# TYPE %s %s\n%s{%s} %d\n", metric.name, metric.type, metric.name,
                          labels, total);
  }
  return text;
}

}  // namespace cortex::replica
