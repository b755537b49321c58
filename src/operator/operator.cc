#include "operator/operator.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "bundle/bundle.h"
#include "common/status.h"
#include "common/util.h"
#include "config/api_config.h"
#include "net/http_client.h"
#include "operator/deploy_plan.h"
#include "operator/replica_plan.h"

namespace cortex::op {

namespace fs = std::filesystem;
using nlohmann::json;
using store::ApiRecord;
using store::ReplicaRecord;
using store::ReplicaState;

namespace {

int64_t NowMs() { return UnixNanos() / 1'000'000; }

// How long a replica stays out of the route table before it is asked to stop.
constexpr int64_t kDrainDelayMs = 1500;

// json::value() throws when the key holds null; configs hold nulls for unset optional fields.
std::string StringOr(const json& object, const char* key, const std::string& fallback) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

bool IsHexId(const std::string& id) {
  if (id.size() != 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

}  // namespace

Operator::Operator(OperatorOptions options, std::unique_ptr<store::StateStore> store,
                   std::unique_ptr<backends::Backend> backend)
    : options_(std::move(options)), store_(std::move(store)), backend_(std::move(backend)) {
  for (const char* sub : {"bundles", "projects", "logs/apis", "run"}) {
    fs::create_directories(fs::path(options_.data_dir) / sub);
  }
  routes_ = {{"version", 0}, {"apis", json::array()}};
  capacity_ = options_.capacity.value_or(DetectCapacity());
  // GPUs held by replicas that outlived an earlier operator process.
  if (auto replicas = store_->ListReplicas(); replicas.ok()) {
    for (const auto& r : *replicas) {
      auto spec = ReadFile(fs::path(options_.data_dir) / "run" / (r.id + ".json"));
      if (!spec.ok()) continue;
      json parsed = json::parse(*spec, nullptr, false);
      if (parsed.is_object() && parsed["gpu_ids"].is_array() && !parsed["gpu_ids"].empty()) {
        gpu_assignments_[r.id] = parsed["gpu_ids"].get<std::vector<int>>();
      }
    }
  }
}

bool Operator::HasBundle(const std::string& project_id) const {
  return IsHexId(project_id) &&
         fs::exists(fs::path(options_.data_dir) / "bundles" / (project_id + ".tar"));
}

absl::Status Operator::PutBundle(const std::string& project_id, const std::string& bytes) {
  if (!IsHexId(project_id))
    return absl::InvalidArgumentError("project id must be a sha256 hex digest");
  if (Sha256Hex(bytes) != project_id) {
    return absl::InvalidArgumentError("project bundle does not match its id (upload corrupted?)");
  }
  return WriteFileAtomic(fs::path(options_.data_dir) / "bundles" / (project_id + ".tar"), bytes);
}

absl::StatusOr<std::string> Operator::ProjectDir(const std::string& project_id) {
  fs::path dir = fs::path(options_.data_dir) / "projects" / project_id;
  if (fs::exists(dir)) return dir.string();
  if (!HasBundle(project_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("project ", project_id.substr(0, 12), " has not been uploaded"));
  }
  ASSIGN_OR_RETURN(std::string bytes,
                   ReadFile(fs::path(options_.data_dir) / "bundles" / (project_id + ".tar")));
  RETURN_IF_ERROR(bundle::ExtractBundle(bytes, dir));
  return dir.string();
}

void Operator::AppendApiLog(const std::string& api, const std::string& line) {
  std::ofstream out(fs::path(options_.data_dir) / "logs" / "apis" / (api + ".log"), std::ios::app);
  out << "[operator] " << line << "\n";
}

absl::StatusOr<json> Operator::Deploy(const json& request) {
  std::string yaml = request.value("config", std::string());
  std::string file_name = request.value("config_file_name", std::string("cortex.yaml"));
  std::string project_id = request.value("project_id", std::string());
  bool force = request.value("force", false);
  ASSIGN_OR_RETURN(std::string project_dir, ProjectDir(project_id));

  config::ParseOptions parse;
  parse.file_name = file_name;
  parse.provider = options_.provider;
  parse.cluster_api_gateway = options_.cluster_api_gateway;
  parse.file_exists = [&](const std::string& p) {
    return fs::is_regular_file(fs::path(project_dir) / p);
  };
  parse.dir_exists = [&](const std::string& p) {
    return fs::is_directory(fs::path(project_dir) / p);
  };
  ASSIGN_OR_RETURN(std::vector<config::ApiConfig> apis, config::ParseApiConfigs(yaml, parse));
  // Splitters go last, so that the APIs they point at exist first (spec §1).
  std::stable_partition(apis.begin(), apis.end(), [](const config::ApiConfig& api) {
    return api.kind != config::Kind::kTrafficSplitter;
  });

  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::vector<ApiRecord> deployed, store_->ListApis());
  // Cluster checks before anything changes: all-or-nothing.
  for (const auto& api : apis) {
    std::string kind(config::KindName(api.kind));
    std::string prefix = absl::StrCat(file_name, ": ", api.name, " (", kind, ")");
    if (api.kind == config::Kind::kBatchAPI && !batch_) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": ", kind, " kind is not supported by this operator"));
    }
    for (const auto& target : api.apis) {
      bool in_file = std::any_of(apis.begin(), apis.end(), [&](const config::ApiConfig& a) {
        return a.name == target.name && a.kind == config::Kind::kRealtimeAPI;
      });
      bool is_deployed = std::any_of(deployed.begin(), deployed.end(), [&](const ApiRecord& a) {
        return a.name == target.name && a.kind == "RealtimeAPI";
      });
      if (!in_file && !is_deployed) {
        return absl::InvalidArgumentError(absl::StrCat(
            prefix, ": apis: api ", target.name, " was either not found or is not a RealtimeAPI"));
      }
    }
    if (api.predictor && api.predictor->type != "python") {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, ": predictor: type: ", api.predictor->type, " predictors are not supported yet"));
    }
    if (api.predictor && (api.predictor->model_path || !api.predictor->models.is_null())) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix,
                       ": predictor: models are not supported yet for the python "
                       "predictor type (remove model_path and models)"));
    }
    for (const auto& other : deployed) {
      if (other.name == api.name) continue;
      auto spec = json::parse(other.spec_json, nullptr, false);
      if (!spec.is_discarded() &&
          StringOr(spec["networking"], "endpoint", "") == api.networking.endpoint) {
        return absl::InvalidArgumentError(absl::StrCat(prefix, ": networking: endpoint: endpoint ",
                                                       api.networking.endpoint,
                                                       " is already being used by ", other.name));
      }
    }
  }

  json results = json::array();
  int64_t now = UnixSeconds();
  ASSIGN_OR_RETURN(std::vector<ReplicaRecord> replicas, store_->ListReplicas());
  for (const auto& api : apis) {
    std::string kind(config::KindName(api.kind));
    json spec = api.ToJson();
    VersionIds ids = ComputeVersionIds(api.name, kind, spec, project_id);
    ASSIGN_OR_RETURN(std::optional<ApiRecord> existing, store_->GetApi(api.name));
    bool updating = existing && IsUpdating(*existing, replicas);
    DeployDecision decision =
        DecideDeploy(api.name, kind, ids, existing ? &*existing : nullptr, updating, force);
    json result = {{"api", {{"name", api.name}, {"kind", kind}}}, {"message", ""}, {"error", ""}};
    result[decision.action == DeployDecision::Action::kReject ? "error" : "message"] =
        decision.message;
    results.push_back(result);
    if (decision.action != DeployDecision::Action::kCreate &&
        decision.action != DeployDecision::Action::kUpdate) {
      continue;
    }
    ApiRecord record;
    if (existing) {
      record = *existing;
    } else {
      record.name = api.name;
      record.kind = kind;
      record.deployment_id = RandomId(10);
      record.created_at = now;
    }
    record.spec_id = ids.spec_id;
    record.predictor_id = ids.predictor_id;
    record.project_id = project_id;
    record.api_id = absl::StrCat(DecreasingHexId(), "-", record.deployment_id, "-", ids.spec_id);
    record.last_updated = now;
    record.desired_replicas = api.kind == config::Kind::kRealtimeAPI
                                  ? DesiredReplicas(spec, existing ? existing->desired_replicas : 0)
                                  : 0;
    spec["project_dir"] = project_dir;
    record.spec_json = spec.dump();
    RETURN_IF_ERROR(store_->PutApi(record));
    AppendApiLog(api.name, decision.message);
  }
  return results;
}

absl::StatusOr<json> Operator::Patch(const json& request) {
  std::string yaml = request.value("config", std::string());
  config::ParseOptions parse;
  parse.file_name = request.value("config_file_name", std::string("cortex.yaml"));
  parse.provider = options_.provider;
  // Names first (without project checks); Deploy validates fully against the stored project.
  ASSIGN_OR_RETURN(std::vector<config::ApiConfig> apis, config::ParseApiConfigs(yaml, parse));
  std::string project_id;
  {
    std::lock_guard lock(mu_);
    for (const auto& api : apis) {
      ASSIGN_OR_RETURN(std::optional<ApiRecord> existing, store_->GetApi(api.name));
      if (!existing) {
        return absl::NotFoundError(absl::StrCat(
            api.name,
            " is not deployed; `cortex patch` updates deployed apis (use `cortex deploy`)"));
      }
      if (!project_id.empty() && existing->project_id != project_id) {
        return absl::InvalidArgumentError(
            "the apis in this file were deployed from different projects; patch them one by one");
      }
      project_id = existing->project_id;
    }
  }
  json deploy = request;
  deploy["project_id"] = project_id;
  return Deploy(deploy);
}

absl::StatusOr<json> Operator::Refresh(const std::string& name, bool force) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::optional<ApiRecord> api, store_->GetApi(name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  if (api->kind != "RealtimeAPI") {
    return absl::InvalidArgumentError(absl::StrCat(
        "refresh is only supported for RealtimeAPI kind, and ", name, " is a ", api->kind));
  }
  ASSIGN_OR_RETURN(std::vector<ReplicaRecord> replicas, store_->ListReplicas());
  if (IsUpdating(*api, replicas) && !force) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is updating (override with --force)"));
  }
  ApiRecord record = *api;
  record.deployment_id = RandomId(10);
  record.last_updated = UnixSeconds();
  record.api_id = absl::StrCat(DecreasingHexId(), "-", record.deployment_id, "-", record.spec_id);
  RETURN_IF_ERROR(store_->PutApi(record));
  std::string message = absl::StrCat("updating ", name);
  AppendApiLog(name, message + " (refresh)");
  return json{{"message", message}};
}

json Operator::GatewayStats() {
  if (options_.gateway_url.empty()) return json::object();
  net::HttpCall call;
  call.url = options_.gateway_url + "/_cortex/stats";
  call.timeout_ms = 1000;
  call.connect_timeout_ms = 300;
  auto result = net::Fetch(call);
  if (!result.ok() || result->status != 200) return json::object();
  auto stats = json::parse(result->body, nullptr, false);
  return stats.is_discarded() ? json::object() : stats;
}

json Operator::Describe(const ApiRecord& api, const std::vector<ReplicaRecord>& replicas,
                        const json& stats) {
  json spec = json::parse(api.spec_json);
  ReplicaCounts updated, stale;
  for (const auto& r : replicas) {
    if (r.api_name != api.name) continue;
    bool is_updated = r.predictor_id == api.predictor_id && r.deployment_id == api.deployment_id;
    (is_updated ? updated : stale).Add(r.state);
  }
  json status = nullptr;  // replicas exist for RealtimeAPIs only
  if (api.kind == "RealtimeAPI") {
    int min_replicas = spec["autoscaling"].value("min_replicas", 1);
    std::string code = StatusCode(updated, api.desired_replicas, min_replicas);
    status = {{"api_name", api.name},
              {"api_id", api.api_id},
              {"status_code", code},
              {"status", StatusText(code)},
              {"replica_counts",
               {{"updated", updated.ToJson()},
                {"stale", stale.ToJson()},
                {"requested", api.desired_replicas}}}};
  }
  json network = nullptr;
  if (auto it = stats.find(api.name); it != stats.end()) {
    int64_t count = it->value("count", int64_t{0});
    network = {
        {"code_2xx", it->value("code_2xx", 0)},
        {"code_4xx", it->value("code_4xx", 0)},
        {"code_5xx", it->value("code_5xx", 0)},
        {"total", count},
        {"latency", count > 0 ? json(it->value("latency_sum_s", 0.0) / count * 1000) : json()}};
  }
  spec.erase("project_dir");
  spec["id"] = api.api_id;
  spec["spec_id"] = api.spec_id;
  spec["predictor_id"] = api.predictor_id;
  spec["deployment_id"] = api.deployment_id;
  spec["project_id"] = api.project_id;
  spec["last_updated"] = api.last_updated;
  json jobs = nullptr;
  if (api.kind == "BatchAPI" && batch_) {
    auto list = batch_->List(api);
    if (list.ok()) jobs = *list;
  }
  return {
      {"spec", spec},
      {"status", status},
      {"job_statuses", jobs},
      {"metrics", {{"network_stats", network}}},
      {"endpoint",
       (StringOr(spec["networking"], "api_gateway", "public") == "none" ? options_.lb_url
                                                                        : options_.gateway_url) +
           StringOr(spec["networking"], "endpoint", "")},
      {"load_balancer_endpoint", options_.lb_url + StringOr(spec["networking"], "endpoint", "")}};
}

absl::StatusOr<json> Operator::ListApis() {
  json stats = GatewayStats();
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto apis, store_->ListApis());
  ASSIGN_OR_RETURN(auto replicas, store_->ListReplicas());
  json out = json::array();
  for (const auto& api : apis) out.push_back(Describe(api, replicas, stats));
  return out;
}

namespace {

// Merges the prediction monitoring of every ready replica (their /_cortex/stats).
json PredictionMetrics(const std::vector<uint16_t>& ports, const json& spec) {
  if (!spec.contains("monitoring") || !spec["monitoring"].is_object()) return nullptr;
  std::map<std::string, int64_t> classes;
  double min = 0, max = 0, sum = 0;
  int64_t count = 0;
  for (uint16_t port : ports) {
    net::HttpCall call;
    call.url = absl::StrCat("http://127.0.0.1:", port, "/_cortex/stats");
    call.timeout_ms = 500;
    call.connect_timeout_ms = 200;
    auto result = net::Fetch(call);
    if (!result.ok() || result->status != 200) continue;
    json stats = json::parse(result->body, nullptr, false);
    if (!stats.is_object()) continue;
    if (stats["class_distribution"].is_object()) {
      for (const auto& [label, n] : stats["class_distribution"].items()) {
        classes[label] += n.get<int64_t>();
      }
    }
    if (const json& r = stats["regression_stats"]; r.is_object()) {
      int64_t n = r.value("sample_count", int64_t{0});
      if (n == 0) continue;
      min = count == 0 ? r.value("min", 0.0) : std::min(min, r.value("min", 0.0));
      max = count == 0 ? r.value("max", 0.0) : std::max(max, r.value("max", 0.0));
      sum += r.value("sum", 0.0);
      count += n;
    }
  }
  std::string type = StringOr(spec["monitoring"], "model_type", "classification");
  if (type == "regression") {
    if (count == 0) return {{"regression_stats", nullptr}};
    return {{"regression_stats",
             {{"min", min}, {"max", max}, {"avg", sum / count}, {"sample_count", count}}}};
  }
  return {{"class_distribution", classes}};
}

}  // namespace

absl::StatusOr<json> Operator::GetApi(const std::string& name) {
  json stats = GatewayStats();
  std::vector<uint16_t> ready_ports;
  json out;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(out, DescribeOne(name, stats, ready_ports));
  }
  json prediction = PredictionMetrics(ready_ports, out["spec"]);
  if (prediction.is_object()) out["metrics"].update(prediction);
  return out;
}

absl::StatusOr<json> Operator::DescribeOne(const std::string& name, const json& stats,
                                           std::vector<uint16_t>& ready_ports) {
  ASSIGN_OR_RETURN(auto api, store_->GetApi(name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  ASSIGN_OR_RETURN(auto replicas, store_->ListReplicas());
  json out = Describe(*api, replicas, stats);
  json versions = json::array();
  ASSIGN_OR_RETURN(auto history, store_->ListVersions(name, 10));
  for (const auto& v : history)
    versions.push_back({{"api_id", v.api_id}, {"last_updated", v.last_updated}});
  out["api_versions"] = versions;
  json replica_list = json::array();
  for (const auto& r : replicas) {
    if (r.api_name != name) continue;
    if (r.state == ReplicaState::kReady && r.port > 0) ready_ports.push_back(r.port);
    replica_list.push_back(
        {{"id", r.id},
         {"state", ReplicaStateName(r.state)},
         {"updated", r.predictor_id == api->predictor_id && r.deployment_id == api->deployment_id},
         {"restarts", r.restarts},
         {"pid", r.pid},
         {"port", r.port}});
  }
  out["replicas"] = replica_list;
  return out;
}

absl::StatusOr<json> Operator::DeleteApi(const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto api, store_->GetApi(name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  ASSIGN_OR_RETURN(std::vector<ApiRecord> all, store_->ListApis());
  std::vector<std::string> users;
  for (const auto& other : all) {
    if (other.kind != "TrafficSplitter") continue;
    for (const auto& t : json::parse(other.spec_json).value("apis", json::array())) {
      if (t.value("name", "") == name) users.push_back(other.name);
    }
  }
  if (!users.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot delete api because it is used by the following TrafficSplitter(s): ",
                     absl::StrJoin(users, ", ")));
  }
  ASSIGN_OR_RETURN(auto replicas, store_->ListReplicas());
  // Mark the replicas first, so that a crash between the two steps still stops them.
  for (auto r : replicas) {
    if (r.api_name != name) continue;
    r.state = ReplicaState::kStopping;
    RETURN_IF_ERROR(store_->PutReplica(r));
  }
  // The control loop stops them (outside the lock: draining takes a while).
  if (api->kind == "BatchAPI" && batch_) RETURN_IF_ERROR(batch_->DeleteApi(name));
  RETURN_IF_ERROR(store_->DeleteApi(name));
  fs::remove(fs::path(options_.data_dir) / "logs" / "apis" / (name + ".log"));
  return json{{"message", absl::StrCat("deleting ", name)}};
}

absl::StatusOr<std::pair<std::string, int64_t>> Operator::ReadLogs(const std::string& name,
                                                                   const std::string& job_id,
                                                                   int64_t offset,
                                                                   int64_t max_bytes) {
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto api, store_->GetApi(name));
    if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  }
  fs::path log = fs::path(options_.data_dir) / "logs" / "apis" / (name + ".log");
  if (!job_id.empty()) {
    if (!batch_) return absl::NotFoundError("batch jobs are not enabled");
    log = batch_->JobLogPath(name, job_id);
    if (!fs::exists(log)) return absl::NotFoundError(absl::StrCat("job ", job_id, " has no log"));
  }
  std::ifstream in(log, std::ios::binary);
  if (!in) return std::make_pair(std::string(), int64_t{0});
  in.seekg(0, std::ios::end);
  int64_t size = in.tellg();
  if (offset < 0) offset = std::max<int64_t>(0, size + offset);  // negative: the tail
  if (offset > size) offset = 0;                                 // the log was truncated
  int64_t n = std::min(max_bytes, size - offset);
  std::string data(static_cast<size_t>(n), '\0');
  in.seekg(offset);
  in.read(data.data(), n);
  return std::make_pair(std::move(data), offset + n);
}

json Operator::Routes() const {
  std::lock_guard lock(mu_);
  return routes_;
}

Resources Operator::UsedResources(const std::map<std::string, ApiRecord>& apis,
                                  const std::map<std::string, ReplicaRecord>& replicas,
                                  const std::string& except) const {
  Resources used;
  for (const auto& [id, r] : replicas) {
    if (id == except || r.state == ReplicaState::kStalled || r.state == ReplicaState::kStopping) {
      continue;
    }
    auto api = apis.find(r.api_name);
    if (api != apis.end()) used += ApiResources(api->second);
  }
  return used;
}

Resources Operator::ApiResources(const ApiRecord& api) const {
  return Resources::FromCompute(json::parse(api.spec_json).value("compute", json::object()));
}

absl::Status Operator::StartReplica(ReplicaRecord& replica, const ApiRecord& api,
                                    const Resources& used, int64_t now_ms) {
  json spec = json::parse(api.spec_json);
  spec["replica_id"] = replica.id;
  Resources request = ApiResources(api);
  std::vector<int> gpus;
  std::optional<std::string> shortfall = Shortfall(used, request, capacity_);
  if (!shortfall && request.gpu > 0) {
    std::set<int> in_use;
    for (const auto& [id, ids] : gpu_assignments_) {
      if (id != replica.id) in_use.insert(ids.begin(), ids.end());
    }
    gpus = PickGpus(in_use, request.gpu, capacity_.gpu);
    if (gpus.empty()) shortfall = absl::StrCat("gpu: ", request.gpu, " requested, none free");
  }
  if (shortfall) {
    if (replica.state != ReplicaState::kStalled) {
      AppendApiLog(api.name,
                   absl::StrCat("replica ", replica.id, " cannot start: compute unavailable (",
                                *shortfall, "; this machine has ", capacity_.ToString(), ")"));
    }
    replica.state = ReplicaState::kStalled;
    replica.state_since = now_ms / 1000;
    replica.next_start_at = now_ms + 2000;
    replica.pid = 0;
    return store_->PutReplica(replica);
  }
  gpu_assignments_.erase(replica.id);
  std::string visible;
  for (int g : gpus) absl::StrAppend(&visible, visible.empty() ? "" : ",", g);
  if (!gpus.empty()) gpu_assignments_[replica.id] = gpus;
  spec["gpu_ids"] = gpus;
  std::string spec_path = absl::StrCat(options_.data_dir, "/run/", replica.id, ".json");
  RETURN_IF_ERROR(WriteFileAtomic(spec_path, spec.dump()));
  backends::ReplicaLaunch launch;
  launch.replica_id = replica.id;
  launch.api_name = api.name;
  launch.spec_path = spec_path;
  launch.python = StringOr(spec["predictor"], "python", options_.default_python);
  // Whole GPUs: a replica sees exactly the ones it was given (none when it asked for none).
  launch.env["CUDA_VISIBLE_DEVICES"] = visible;
  // Chaining: a predictor calls another API at $CORTEX_LOAD_BALANCER_URL/<endpoint>.
  launch.env["CORTEX_LOAD_BALANCER_URL"] = options_.lb_url;
  launch.env["CORTEX_API_GATEWAY_URL"] = options_.gateway_url;
  auto pid = backend_->StartReplica(launch);
  replica.state = ReplicaState::kStarting;
  replica.state_since = now_ms / 1000;
  replica.port = 0;
  if (!pid.ok()) {
    replica.pid = 0;
    replica.state = ReplicaState::kFailed;
    ++replica.restarts;
    replica.next_start_at = now_ms + RestartBackoffMs(replica.restarts);
    AppendApiLog(api.name, std::string(pid.status().message()));
    return store_->PutReplica(replica);
  }
  replica.pid = *pid;
  return store_->PutReplica(replica);
}

void Operator::ReconcileOnce() {
  std::vector<ReplicaRecord> to_stop;
  {
    std::lock_guard lock(mu_);
    try {
      ReconcileLocked(to_stop);
    } catch (const std::exception& e) {
      // A malformed record must not take the control plane down; report and go on.
      std::cerr << "reconcile: " << e.what() << std::endl;
    }
  }
  // Stopping waits for the replica to drain: the REST API must not wait with it. The records
  // stay (state "stopping") until the processes are gone, so a crash here loses nothing.
  for (const auto& r : to_stop) backend_->StopReplica(r, 10'000);
  {
    std::lock_guard lock(mu_);
    for (const auto& r : to_stop) Forget(r);
  }
  if (batch_) {
    batch_->Reconcile([this](const std::string& name) -> std::optional<ApiRecord> {
      auto api = store_->GetApi(name);
      return api.ok() ? *api : std::nullopt;
    });
  }
}

void Operator::EnableBatchJobs(BatchOptions options, std::unique_ptr<store::JobQueue> queue) {
  batch_ = std::make_unique<BatchJobs>(std::move(options), std::move(queue), *backend_);
}

absl::StatusOr<json> Operator::JobEndpoint(const std::string& method, const std::string& name,
                                           const std::string& job_id, const std::string& body,
                                           bool dry_run, std::string* text) {
  if (!batch_) return absl::UnimplementedError("batch jobs are not enabled");
  ASSIGN_OR_RETURN(std::optional<ApiRecord> api, store_->GetApi(name));
  if (!api) return absl::NotFoundError(absl::StrCat(name, " is not deployed"));
  if (api->kind != "BatchAPI") {
    return absl::InvalidArgumentError(
        absl::StrCat("this operation is only allowed for BatchAPI kind and is not supported for ",
                     name, " of kind ", api->kind));
  }
  if (method == "POST") return batch_->Submit(*api, body, dry_run, text);
  if (method == "GET" && job_id.empty()) return batch_->List(*api);
  json spec = json::parse(api->spec_json);
  std::string endpoint =
      (StringOr(spec["networking"], "api_gateway", "public") == "none" ? options_.lb_url
                                                                       : options_.gateway_url) +
      StringOr(spec["networking"], "endpoint", "/" + name);
  if (method == "GET") return batch_->Describe(*api, job_id, endpoint);
  if (method == "DELETE") {
    if (job_id.empty()) return absl::InvalidArgumentError("jobID must be given");
    return batch_->Stop(name, job_id);
  }
  return absl::InvalidArgumentError(absl::StrCat("method ", method, " is not supported"));
}

absl::StatusOr<json> Operator::WorkerCall(const std::string& job_id, const std::string& action,
                                          const json& body) {
  if (!batch_) return absl::UnimplementedError("batch jobs are not enabled");
  return batch_->WorkerCall(job_id, action, body);
}

void Operator::ReconcileLocked(std::vector<ReplicaRecord>& to_stop) {
  auto apis_or = store_->ListApis();
  auto replicas_or = store_->ListReplicas();
  if (!apis_or.ok() || !replicas_or.ok()) {
    std::cerr << "reconcile: " << (apis_or.ok() ? replicas_or.status() : apis_or.status()) << "\n";
    return;
  }
  std::map<std::string, ApiRecord> apis;
  for (auto& a : *apis_or) apis[a.name] = a;
  int64_t now_ms = NowMs();

  // 1. Observe.
  std::map<std::string, ReplicaRecord> replicas;
  for (auto& r : *replicas_or) {
    auto api = apis.find(r.api_name);
    if (api == apis.end() || (r.state == ReplicaState::kStopping && r.next_start_at <= now_ms)) {
      to_stop.push_back(r);
      continue;
    }
    ReplicaRecord before = r;
    if (r.state == ReplicaState::kStarting || r.state == ReplicaState::kReady) {
      backends::ReplicaProbe probe = backend_->Probe(r, ApiResources(api->second).mem_bytes);
      if (!probe.alive) {
        r.state = probe.oom ? ReplicaState::kOom : ReplicaState::kFailed;
        ++r.restarts;
        r.next_start_at = now_ms + RestartBackoffMs(r.restarts);
        r.state_since = now_ms / 1000;
        r.port = 0;
        AppendApiLog(r.api_name,
                     absl::StrCat("replica ", r.id, " ", probe.reason, "; restarting it in ",
                                  RestartBackoffMs(r.restarts) / 1000, "s"));
      } else {
        r.port = probe.port;
        if (probe.ready && r.state != ReplicaState::kReady) {
          r.state = ReplicaState::kReady;
          r.ever_ready = true;
          r.restarts = 0;
          r.state_since = now_ms / 1000;
        } else if (!probe.ready && r.state == ReplicaState::kReady) {
          r.state = ReplicaState::kStarting;
          r.state_since = now_ms / 1000;
        }
      }
    }
    if (r.state != before.state || r.port != before.port || r.restarts != before.restarts) {
      (void)store_->PutReplica(r);
    }
    replicas[r.id] = r;
  }

  // 2. Act.
  for (const auto& [name, api] : apis) {
    if (api.kind != "RealtimeAPI") continue;
    std::vector<ReplicaView> views;
    for (const auto& [id, r] : replicas) {
      if (r.api_name != name) continue;
      bool updated = r.predictor_id == api.predictor_id && r.deployment_id == api.deployment_id;
      views.push_back({id, updated, r.state, r.next_start_at});
    }
    json strategy = json::parse(api.spec_json).value("update_strategy", json::object());
    RolloutLimits limits =
        ResolveRollout(strategy.is_object() ? StringOr(strategy, "max_surge", "25%") : "25%",
                       strategy.is_object() ? StringOr(strategy, "max_unavailable", "25%") : "25%",
                       api.desired_replicas);
    ReplicaPlan plan = PlanReplicas(api.desired_replicas, limits, views, now_ms);
    for (const auto& id : plan.stop) {
      // Unpublish first; stop once the gateways have had time to take the new routes (a
      // request already on its way to the replica is still served while it drains).
      ReplicaRecord& r = replicas[id];
      r.state = ReplicaState::kStopping;
      r.next_start_at = now_ms + kDrainDelayMs;
      (void)store_->PutReplica(r);
      AppendApiLog(name, absl::StrCat("stopping replica ", id));
    }
    for (const auto& id : plan.restart) {
      if (replicas[id].state != ReplicaState::kStalled) {
        AppendApiLog(name, absl::StrCat("restarting replica ", id));
      }
      (void)StartReplica(replicas[id], api, UsedResources(apis, replicas, id), now_ms);
    }
    for (int i = 0; i < plan.start; ++i) {
      ReplicaRecord r;
      r.id = absl::StrCat(name, "-", api.deployment_id.substr(0, 5), "-", RandomId(5));
      r.api_name = name;
      r.predictor_id = api.predictor_id;
      r.deployment_id = api.deployment_id;
      r.created_at = now_ms / 1000;
      AppendApiLog(name, absl::StrCat("starting replica ", r.id));
      (void)StartReplica(r, api, UsedResources(apis, replicas, r.id), now_ms);
      replicas[r.id] = r;
    }
  }

  // 3. Publish routes to ready replicas.
  json route_apis = json::array();
  for (const auto& [name, api] : apis) {
    json spec = json::parse(api.spec_json);
    json ready = json::array();
    for (const auto& [id, r] : replicas) {
      if (r.api_name == name && r.state == ReplicaState::kReady && r.port > 0) {
        ready.push_back({{"id", id}, {"host", "127.0.0.1"}, {"port", r.port}});
      }
    }
    json route = {{"name", name},
                  {"endpoint", StringOr(spec["networking"], "endpoint", "/" + name)},
                  {"api_gateway", StringOr(spec["networking"], "api_gateway", "public")},
                  {"replicas", ready}};
    if (api.kind == "BatchAPI") {
      route["batch"] = true;  // the gateway forwards job submissions and queries to the operator
    }
    if (api.kind == "TrafficSplitter") {
      json targets = json::array();
      for (const auto& t : spec.value("apis", json::array())) {
        targets.push_back({{"api", t.value("name", "")}, {"weight", t.value("weight", 0)}});
      }
      route["targets"] = targets;
    }
    route_apis.push_back(std::move(route));
  }
  if (route_apis != routes_["apis"]) {
    int64_t version = std::max(now_ms, routes_version_.load() + 1);
    routes_ = {{"version", version}, {"apis", route_apis}};
    routes_version_ = version;
    if (on_routes_changed_) on_routes_changed_();
  }
}

std::vector<AutoscaleTarget> Operator::AutoscaleTargets() {
  std::lock_guard lock(mu_);
  std::vector<AutoscaleTarget> targets;
  auto apis = store_->ListApis();
  auto replicas = store_->ListReplicas();
  if (!apis.ok() || !replicas.ok()) return targets;
  for (const auto& api : *apis) {
    if (api.kind != "RealtimeAPI") continue;
    json spec = json::parse(api.spec_json, nullptr, false);
    if (!spec.is_object() || !spec["autoscaling"].is_object()) continue;
    const json& a = spec["autoscaling"];
    AutoscaleTarget t;
    t.name = api.name;
    t.api_id = api.api_id;
    t.desired = api.desired_replicas;
    auto seconds = [&](const char* key, int64_t fallback) {
      auto parsed = config::ParseDurationSeconds(StringOr(a, key, ""));
      return (parsed.ok() ? *parsed : fallback) * 1000;
    };
    t.settings.min_replicas = a.value("min_replicas", 1);
    t.settings.max_replicas = a.value("max_replicas", 100);
    t.settings.target_replica_concurrency = a.value("target_replica_concurrency", 1.0);
    t.settings.window_ms = seconds("window", 60);
    t.settings.downscale_stabilization_period_ms = seconds("downscale_stabilization_period", 300);
    t.settings.upscale_stabilization_period_ms = seconds("upscale_stabilization_period", 60);
    t.settings.max_downscale_factor = a.value("max_downscale_factor", 0.75);
    t.settings.max_upscale_factor = a.value("max_upscale_factor", 1.5);
    t.settings.downscale_tolerance = a.value("downscale_tolerance", 0.05);
    t.settings.upscale_tolerance = a.value("upscale_tolerance", 0.05);
    for (const auto& r : *replicas) {
      if (r.api_name == api.name && r.state == ReplicaState::kReady && r.port > 0) {
        t.ready.emplace_back(r.id, r.port);
      }
    }
    targets.push_back(std::move(t));
  }
  return targets;
}

void Operator::SetDesiredReplicas(const std::string& name, const std::string& api_id, int from,
                                  int to) {
  std::lock_guard lock(mu_);
  auto api = store_->GetApi(name);
  if (!api.ok() || !api->has_value() || (*api)->api_id != api_id) return;
  ApiRecord record = **api;
  record.desired_replicas = to;
  // Not a new version: keep the history as it is (PutApi appends the same api id again).
  if (absl::Status st = store_->PutApi(record); !st.ok()) {
    std::cerr << "autoscaling " << name << ": " << st << std::endl;
    return;
  }
  AppendApiLog(name, absl::StrCat(name, " autoscaling event: ", from, " -> ", to));
  std::cout << "[autoscaler] " << name << " autoscaling event: " << from << " -> " << to
            << std::endl;
}

std::string Operator::MetricsText() {
  std::lock_guard lock(mu_);
  auto apis = store_->ListApis();
  auto replicas = store_->ListReplicas();
  if (!apis.ok() || !replicas.ok()) return "";
  std::string text =
      "# TYPE cortex_api_requested_replicas gauge\n# TYPE cortex_api_ready_replicas gauge\n";
  for (const auto& api : *apis) {
    int ready = 0;
    for (const auto& r : *replicas)
      ready += r.api_name == api.name && r.state == ReplicaState::kReady;
    absl::StrAppend(&text, "cortex_api_requested_replicas{api=\"", api.name, "\"} ",
                    api.desired_replicas, "\n", "cortex_api_ready_replicas{api=\"", api.name,
                    "\"} ", ready, "\n");
  }
  return text;
}

void Operator::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    ReconcileOnce();
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.reconcile_interval_ms));
  }
}

void Operator::StopAllReplicas() {
  std::lock_guard lock(mu_);
  auto replicas = store_->ListReplicas();
  if (!replicas.ok()) return;
  for (const auto& r : *replicas) {
    backend_->StopReplica(r, 10'000);
    Forget(r);
  }
  // Batch workers too; their jobs start new ones at the next start.
  if (batch_) batch_->StopAllWorkers();
}

void Operator::Forget(const ReplicaRecord& replica) {
  (void)store_->DeleteReplica(replica.id);
  gpu_assignments_.erase(replica.id);
  std::error_code ignored;
  fs::remove(fs::path(options_.data_dir) / "run" / (replica.id + ".json"), ignored);
}

}  // namespace cortex::op
