#include "operator/api_views.h"

#include <absl/strings/str_cat.h>

#include <filesystem>
#include <map>

#include "common/json_fields.h"
#include "common/status.h"
#include "common/util.h"
#include "net/http_client.h"
#include "operator/api_status.h"

namespace cortex::op {

using nlohmann::json;

namespace {

json FetchJson(const std::string& url, int timeout_ms) {
  net::HttpCall call;
  call.url = url;
  call.timeout_ms = timeout_ms;
  call.connect_timeout_ms = 300;
  auto result = net::Fetch(call);
  if (!result.ok() || result->status != 200) return json::object();
  json body = json::parse(result->body, nullptr, false);
  return body.is_object() ? body : json::object();
}

// The /_cortex/stats of every ready replica.
std::vector<json> ReplicaStats(const backends::ReplicaSetStatus& replicas) {
  std::vector<json> all;
  for (const auto& r : replicas.replicas) {
    if (r.state != ReplicaState::kReady || r.endpoint.port == 0) continue;
    all.push_back(FetchJson(
        absl::StrCat("http://", r.endpoint.host, ":", r.endpoint.port, "/_cortex/stats"), 500));
  }
  return all;
}

// Merges the prediction monitoring of the replicas.
json PredictionMetrics(const ApiSpec& api, const std::vector<json>& replica_stats) {
  if (!api.config->monitoring) return nullptr;
  std::map<std::string, int64_t> classes;
  double min = 0, max = 0, sum = 0;
  int64_t count = 0;
  for (const json& stats : replica_stats) {
    if (auto it = stats.find("class_distribution"); it != stats.end() && it->is_object()) {
      for (const auto& [label, n] : it->items()) {
        if (n.is_number_integer()) classes[label] += n.get<int64_t>();
      }
    }
    if (auto it = stats.find("regression_stats"); it != stats.end() && it->is_object()) {
      int64_t n = IntField(*it, "sample_count");
      if (n == 0) continue;
      double r_min = NumberField(*it, "min"), r_max = NumberField(*it, "max");
      min = count == 0 ? r_min : std::min(min, r_min);
      max = count == 0 ? r_max : std::max(max, r_max);
      sum += NumberField(*it, "sum");
      count += n;
    }
  }
  if (api.config->monitoring->model_type.value_or("classification") == "regression") {
    if (count == 0) return {{"regression_stats", nullptr}};
    return {{"regression_stats",
             {{"min", min}, {"max", max}, {"avg", sum / count}, {"sample_count", count}}}};
  }
  return {{"class_distribution", classes}};
}

// Server-side batching: the batches the replicas sent to their workers, and their mean size.
json BatchingMetrics(const ApiSpec& api, const std::vector<json>& replica_stats) {
  if (!api.config->predictor || !api.config->predictor->server_side_batching) return nullptr;
  int64_t batches = 0, requests = 0;
  for (const json& stats : replica_stats) {
    batches += IntField(stats, "batches");
    requests += IntField(stats, "batched_requests");
  }
  return {{"batch_stats",
           {{"batches", batches},
            {"batched_requests", requests},
            {"avg_batch_size", batches > 0 ? json(double(requests) / batches) : json()}}}};
}

}  // namespace

ApiViews::ApiViews(ViewOptions options, store::StateStore& store, SpecCache& specs,
                   const Reconciler& reconciler, const ApiLogs& logs)
    : options_(std::move(options)),
      store_(store),
      specs_(specs),
      reconciler_(reconciler),
      logs_(logs) {}

json ApiViews::GatewayStats() const {
  if (options_.gateway_url.empty()) return json::object();
  return FetchJson(options_.gateway_url + "/_cortex/stats", 1000);
}

json ApiViews::Describe(const ApiSpec& api, const Observed& observed, const json& gateway_stats) {
  const store::ApiRecord& record = api.record;
  backends::ReplicaSetStatus replicas = observed.For(record);
  json status = nullptr;  // replicas exist for RealtimeAPIs only
  if (api.kind() == config::Kind::kRealtimeAPI) {
    ReplicaCounts updated, stale;
    for (const auto& r : replicas.replicas) {
      (r.updated ? updated : stale).Add(r.state);
    }
    std::string code =
        StatusCode(updated, record.desired_replicas, api.config->autoscaling.min_replicas);
    status = {{"api_name", record.name},
              {"api_id", record.api_id},
              {"status_code", code},
              {"status", StatusText(code)},
              {"replica_counts",
               {{"updated", updated.ToJson()},
                {"stale", stale.ToJson()},
                {"requested", record.desired_replicas}}}};
  }
  json network = nullptr;
  // Counts of an earlier deployment under the same name are not this one's (spec §10).
  if (auto it = gateway_stats.find(api.name());
      it != gateway_stats.end() && StringField(*it, "metrics_key") == api.metrics_key()) {
    int64_t count = IntField(*it, "count");
    network = {
        {"code_2xx", IntField(*it, "code_2xx")},
        {"code_4xx", IntField(*it, "code_4xx")},
        {"code_5xx", IntField(*it, "code_5xx")},
        {"total", count},
        {"latency", count > 0 ? json(NumberField(*it, "latency_sum_s") / count * 1000) : json()}};
  }
  json spec = api.config->ToJson();
  spec["id"] = record.api_id;
  spec["spec_id"] = record.spec_id;
  spec["predictor_id"] = record.predictor_id;
  spec["deployment_id"] = record.deployment_id;
  spec["project_id"] = record.project_id;
  spec["last_updated"] = record.last_updated;
  json jobs = nullptr;
  if (api.kind() == config::Kind::kBatchAPI && jobs_ != nullptr) {
    auto list = jobs_->List(api.name());
    if (list.ok()) jobs = *list;
  }
  return {{"spec", spec},
          {"status", status},
          {"job_statuses", jobs},
          {"metrics", {{"network_stats", network}}},
          {"endpoint", EndpointUrl(*api.config, options_.gateway_url, options_.lb_url)},
          {"load_balancer_endpoint", options_.lb_url + api.config->networking.endpoint}};
}

absl::StatusOr<json> ApiViews::List() {
  json stats = GatewayStats();
  ASSIGN_OR_RETURN(std::vector<ApiSpecPtr> apis, specs_.List(store_));
  auto observed = reconciler_.observed();
  json out = json::array();
  for (const auto& api : apis) out.push_back(Describe(*api, *observed, stats));
  return out;
}

void ApiViews::SampleTraffic(int64_t now_ms) {
  if (options_.gateway_url.empty()) return;
  json stats = GatewayStats();
  // A gateway that did not answer gives {}: keep the history rather than forget every API.
  if (stats.is_object() && !stats.empty()) traffic_.Record(now_ms, stats);
}

absl::StatusOr<json> ApiViews::History(const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> api, specs_.Find(store_, name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  constexpr int64_t kWindowSeconds = 600;
  json autoscaling = autoscaling_ != nullptr
                         ? autoscaling_->History(name, UnixSeconds() - kWindowSeconds)
                         : json{{"in_flight", json::array()}, {"decisions", json::array()}};
  backends::ReplicaSetStatus replicas = reconciler_.observed()->For((*api)->record);
  int ready = 0;
  for (const auto& r : replicas.replicas) ready += r.state == ReplicaState::kReady ? 1 : 0;
  return json{{"api", name},
              {"kind", config::KindName((*api)->kind())},
              {"requests", traffic_.Series(name)},
              {"in_flight", autoscaling["in_flight"]},
              {"decisions", autoscaling["decisions"]},
              {"replicas", {{"ready", ready}, {"requested", (*api)->record.desired_replicas}}}};
}

absl::StatusOr<json> ApiViews::WithDescriptions(json results) {
  json stats = GatewayStats();
  auto observed = reconciler_.observed();
  for (json& result : results) {
    if (!StringField(result, "error").empty() || !result.contains("api")) continue;
    std::string name = StringField(result["api"], "name");
    ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> api, specs_.Find(store_, name));
    if (!api) continue;  // deleted meanwhile
    json described = Describe(**api, *observed, stats);
    described["name"] = name;
    described["kind"] = result["api"]["kind"];
    result["api"] = std::move(described);
  }
  return results;
}

absl::StatusOr<json> ApiViews::Get(const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<ApiSpecPtr> api, specs_.Find(store_, name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  auto observed = reconciler_.observed();
  json out = Describe(**api, *observed, GatewayStats());
  json versions = json::array();
  ASSIGN_OR_RETURN(auto history, store_.ListVersions(name, 10));
  for (const auto& v : history) {
    versions.push_back({{"api_id", v.api_id}, {"last_updated", v.last_updated}});
  }
  out["api_versions"] = versions;
  backends::ReplicaSetStatus replicas = observed->For((*api)->record);
  json replica_list = json::array();
  for (const auto& r : replicas.replicas) {
    json entry = {{"id", r.id},
                  {"state", ReplicaStateName(r.state)},
                  {"updated", r.updated},
                  {"restarts", r.restarts},
                  {"port", r.endpoint.port}};
    if (r.details.is_object()) entry.update(r.details);
    replica_list.push_back(std::move(entry));
  }
  out["replicas"] = replica_list;
  // The replicas are asked only when an API has something of theirs to show.
  const config::ApiConfig& config = *(*api)->config;
  bool batching = config.predictor && config.predictor->server_side_batching;
  std::vector<json> replica_stats =
      config.monitoring || batching ? ReplicaStats(replicas) : std::vector<json>{};
  for (const json& metrics :
       {PredictionMetrics(**api, replica_stats), BatchingMetrics(**api, replica_stats)}) {
    if (metrics.is_object()) out["metrics"].update(metrics);
  }
  return out;
}

absl::StatusOr<std::pair<std::string, int64_t>> ApiViews::Logs(const std::string& name,
                                                               const std::string& job_id,
                                                               int64_t offset, int64_t max_bytes) {
  ASSIGN_OR_RETURN(std::optional<store::ApiRecord> api, store_.GetApi(name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  std::string path = logs_.ApiLogPath(name);
  if (!job_id.empty()) {
    if (jobs_ == nullptr) return absl::NotFoundError("batch jobs are not enabled");
    path = logs_.JobLogPath(name, job_id);
    if (job_id.find('/') != std::string::npos || !std::filesystem::exists(path)) {
      return absl::NotFoundError(absl::StrCat("job ", job_id, " has no log"));
    }
  }
  return ApiLogs::ReadChunk(path, offset, max_bytes);
}

std::string ApiViews::MetricsText() {
  auto apis = store_.ListApis();
  if (!apis.ok()) return "";
  auto observed = reconciler_.observed();
  std::string text =
      "# TYPE cortex_api_requested_replicas gauge\n# TYPE cortex_api_ready_replicas gauge\n";
  for (const auto& api : *apis) {
    int ready = 0;
    if (const auto* set = observed->Find(api.name)) {
      for (const auto& r : set->replicas) ready += r.state == ReplicaState::kReady;
    }
    absl::StrAppend(&text, "cortex_api_requested_replicas{api=\"", api.name, "\"} ",
                    api.desired_replicas, "\n", "cortex_api_ready_replicas{api=\"", api.name,
                    "\"} ", ready, "\n");
  }
  return text;
}

}  // namespace cortex::op
