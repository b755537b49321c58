#include "gateway/request_stats.h"

#include <absl/strings/str_format.h>

namespace cortex::gateway {

void RequestStats::Record(const ApiRoute& api, unsigned status, double seconds) {
  std::lock_guard lock(mu_);
  Api& s = apis_[api.name];
  if (s.metrics_key != api.metrics_key) {
    s = Api();
    s.metrics_key = api.metrics_key;
  }
  if (status < 300) {
    ++s.code_2xx;
  } else if (status < 500) {
    ++s.code_4xx;
  } else {
    ++s.code_5xx;
  }
  s.latency.Observe(seconds);
}

void RequestStats::Retain(const RouteTable& routes) {
  std::lock_guard lock(mu_);
  for (auto it = apis_.begin(); it != apis_.end();) {
    const ApiRoute* api = routes.FindByName(it->first);
    if (api == nullptr || api->metrics_key != it->second.metrics_key) {
      it = apis_.erase(it);
    } else {
      ++it;
    }
  }
}

nlohmann::json RequestStats::ToJson() const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, s] : apis_) {
    out[name] = {{"metrics_key", s.metrics_key},
                 {"code_2xx", s.code_2xx},
                 {"code_4xx", s.code_4xx},
                 {"code_5xx", s.code_5xx},
                 {"count", s.latency.count()},
                 {"latency_sum_s", s.latency.sum()},
                 {"latency_buckets", s.latency.buckets()}};
  }
  return out;
}

std::string RequestStats::Prometheus() const {
  std::string text =
      "# TYPE cortex_requests_total counter\n"
      "# TYPE cortex_request_duration_seconds histogram\n";
  std::lock_guard lock(mu_);
  for (const auto& [api, s] : apis_) {
    absl::StrAppendFormat(&text, "cortex_requests_total{api=\"%s\",code=\"2XX\"} %d\n", api,
                          s.code_2xx);
    absl::StrAppendFormat(&text, "cortex_requests_total{api=\"%s\",code=\"4XX\"} %d\n", api,
                          s.code_4xx);
    absl::StrAppendFormat(&text, "cortex_requests_total{api=\"%s\",code=\"5XX\"} %d\n", api,
                          s.code_5xx);
    text +=
        s.latency.Prometheus("cortex_request_duration_seconds", absl::StrFormat("api=\"%s\"", api));
  }
  return text;
}

}  // namespace cortex::gateway
