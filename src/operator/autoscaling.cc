#include "operator/autoscaling.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/util.h"
#include "net/http_client.h"

namespace cortex::op {

using nlohmann::json;

namespace {

constexpr int64_t kKeepSeconds = 3600;  // longer than any sensible window

// Samples after `since_ms` from one replica front, or nothing when it does not answer.
json FetchSamples(const backends::Endpoint& front, int64_t since_ms) {
  net::HttpCall call;
  call.url =
      absl::StrCat("http://", front.host, ":", front.port, "/_cortex/in_flight?since=", since_ms);
  call.timeout_ms = 500;
  call.connect_timeout_ms = 200;
  auto result = net::Fetch(call);
  if (!result.ok() || result->status != 200) return json::array();
  json body = json::parse(result->body, nullptr, false);
  return body.is_object() && body["samples"].is_array() ? body["samples"] : json::array();
}

}  // namespace

std::vector<AutoscaleTarget> AutoscaleTargets(const std::vector<ApiSpecPtr>& apis,
                                              const Observed& observed) {
  std::vector<AutoscaleTarget> targets;
  for (const auto& api : apis) {
    if (api->kind() != config::Kind::kRealtimeAPI) continue;
    AutoscaleTarget t;
    t.name = api->name();
    t.api_id = api->record.api_id;
    t.desired = api->record.desired_replicas;
    t.settings = AutoscalerSettings(api->config->autoscaling);
    if (const backends::ReplicaSetStatus* set = observed.Find(api->name())) {
      for (const auto& r : set->replicas) {
        if (r.state == ReplicaState::kReady && r.endpoint.port > 0) {
          t.ready.emplace_back(r.id, r.endpoint);
        }
      }
    }
    targets.push_back(std::move(t));
  }
  return targets;
}

void Autoscaling::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    auto started = std::chrono::steady_clock::now();
    Step(UnixNanos() / 1'000'000);
    std::this_thread::sleep_until(started + std::chrono::seconds(1));
  }
}

void Autoscaling::Step(int64_t now_ms) {
  std::vector<AutoscaleTarget> targets = targets_();
  absl::MutexLock lock(&mu_);
  std::map<std::string, ApiSeries> kept;
  for (const auto& target : targets) {
    ApiSeries& series = series_[target.name];
    if (series.api_id != target.api_id) {
      // Cortex recreates the autoscaler on every apply: fresh start, current = the deployment's.
      series.api_id = target.api_id;
      series.state = autoscaler::State{};
      series.state.current = target.desired;
      series.next_tick_ms = now_ms + tick_ms_;
    }
    series.state.current = target.desired;  // another writer (deploy) may have changed it
    for (const auto& [replica_id, front] : target.ready) {
      int64_t& seen = series.seen_ms[replica_id];
      for (const auto& sample : FetchSamples(front, seen)) {
        if (!sample.is_array() || sample.size() != 2 || !sample[0].is_number_integer() ||
            !sample[1].is_number()) {
          continue;  // a malformed answer counts as none
        }
        int64_t time_ms = sample[0].get<int64_t>();
        series.per_second[time_ms / 1000] += sample[1].get<double>();
        seen = std::max(seen, time_ms);
      }
    }
    while (!series.per_second.empty() &&
           series.per_second.begin()->first < now_ms / 1000 - kKeepSeconds) {
      series.per_second.erase(series.per_second.begin());
    }
    if (now_ms >= series.next_tick_ms) {
      series.next_tick_ms = now_ms + tick_ms_;
      std::vector<autoscaler::Sample> samples;
      // The current second is still filling in: leave it out.
      for (const auto& [second, value] : series.per_second) {
        if (second < now_ms / 1000) samples.push_back({second * 1000 + 999, value});
      }
      int before = series.state.current;
      series.last = autoscaler::Tick(target.settings, samples, now_ms, series.state);
      if (series.last.has_data) {
        std::cout << "[autoscaler] " << target.name << " autoscaler tick: avg_in_flight="
                  << absl::StrFormat("%.3f", series.last.avg_in_flight)
                  << ", request=" << series.last.request << std::endl;
      }
      if (series.last.has_data) {
        series.decisions.push_back({{"time", now_ms},
                                    {"avg_in_flight", series.last.avg_in_flight},
                                    {"recommendation", series.last.recommendation},
                                    {"from", before},
                                    {"to", series.last.request}});
        if (series.decisions.size() > kMaxDecisions) series.decisions.pop_front();
      }
      if (series.last.has_data && series.last.request != before) {
        set_desired_(target.name, target.api_id, before, series.last.request);
      }
    }
    kept[target.name] = std::move(series);
  }
  series_ = std::move(kept);  // APIs that were deleted are forgotten
}

json Autoscaling::History(const std::string& api, int64_t since_s) const {
  absl::MutexLock lock(&mu_);
  json out = {{"in_flight", json::array()}, {"decisions", json::array()}};
  auto it = series_.find(api);
  if (it == series_.end()) return out;
  for (auto s = it->second.per_second.upper_bound(since_s); s != it->second.per_second.end(); ++s) {
    out["in_flight"].push_back({s->first, s->second});
  }
  for (const json& decision : it->second.decisions) out["decisions"].push_back(decision);
  return out;
}

std::string Autoscaling::MetricsText() const {
  absl::MutexLock lock(&mu_);
  std::string text =
      "# TYPE cortex_api_in_flight gauge\n"
      "# TYPE cortex_api_desired_replicas gauge\n"
      "# TYPE cortex_api_autoscaler_recommendation gauge\n";
  for (const auto& [name, series] : series_) {
    double latest = series.per_second.empty() ? 0 : series.per_second.rbegin()->second;
    absl::StrAppendFormat(&text, "cortex_api_in_flight{api=\"%s\"} %g\n", name, latest);
    absl::StrAppendFormat(&text, "cortex_api_desired_replicas{api=\"%s\"} %d\n", name,
                          series.state.current);
    if (series.last.has_data) {
      absl::StrAppendFormat(&text, "cortex_api_autoscaler_recommendation{api=\"%s\"} %d\n", name,
                            series.last.recommendation);
    }
  }
  return text;
}

}  // namespace cortex::op
