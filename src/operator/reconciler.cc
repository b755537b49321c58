#include "operator/reconciler.h"

#include <chrono>
#include <iostream>
#include <thread>

namespace cortex::op {

const backends::ReplicaSetStatus* Observed::Find(const std::string& api) const {
  auto it = replica_sets.find(api);
  return it == replica_sets.end() ? nullptr : &it->second;
}

backends::ReplicaSetStatus Observed::For(const store::ApiRecord& record) const {
  const backends::ReplicaSetStatus* found = Find(record.name);
  if (found == nullptr) return {record.name, record.predictor_id, record.deployment_id, {}, {}};
  backends::ReplicaSetStatus set = *found;
  if (set.predictor_id != record.predictor_id || set.deployment_id != record.deployment_id) {
    for (auto& r : set.replicas) r.updated = false;
    set.predictor_id = record.predictor_id;
    set.deployment_id = record.deployment_id;
  }
  return set;
}

Reconciler::Reconciler(ReconcilerOptions options, store::StateStore& store, SpecCache& specs,
                       backends::Backend& backend, const ApiLogs& logs, const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      specs_(specs),
      backend_(backend),
      logs_(logs),
      clock_(clock),
      observed_(std::make_shared<Observed>()),
      routes_(*gateway::RouteTable::Build(0, {})) {}

std::shared_ptr<const Observed> Reconciler::observed() const {
  absl::MutexLock lock(&mu_);
  return observed_;
}

std::shared_ptr<const gateway::RouteTable> Reconciler::routes() const {
  absl::MutexLock lock(&mu_);
  return routes_;
}

backends::ReplicaSetSpec Reconciler::SetFor(const ApiSpec& api) const {
  backends::ReplicaSetSpec set;
  set.api_name = api.name();
  set.predictor_id = api.record.predictor_id;
  set.deployment_id = api.record.deployment_id;
  set.api_id = api.record.api_id;
  set.spec_id = api.record.spec_id;
  set.replicas = api.record.desired_replicas;
  set.api = api.config;
  set.project_dir = api.project_dir;
  set.python = PythonFor(*api.config, options_.default_python);
  // Chaining: a predictor calls another API at $CORTEX_LOAD_BALANCER_URL/<endpoint>.
  set.env["CORTEX_LOAD_BALANCER_URL"] = options_.lb_url;
  set.env["CORTEX_API_GATEWAY_URL"] = options_.gateway_url;
  return set;
}

void Reconciler::Step() {
  auto apis = specs_.List(store_);
  if (!apis.ok()) {
    std::cerr << "reconcile: " << apis.status() << std::endl;
    return;
  }
  // An API that was deleted leaves the route table before its replicas are stopped.
  Publish(*apis, *observed());

  std::vector<backends::ReplicaSetSpec> sets;
  for (const auto& api : *apis) {
    if (api->kind() == config::Kind::kRealtimeAPI) sets.push_back(SetFor(*api));
  }
  std::vector<backends::ReplicaSetStatus> statuses = backend_.SyncReplicaSets(sets);
  auto observed = std::make_shared<Observed>();
  observed->at_ms = clock_.NowMs();
  for (auto& status : statuses) {
    for (const auto& event : status.events) logs_.Append(status.api_name, event);
    status.events.clear();
    std::string name = status.api_name;
    observed->replica_sets[name] = std::move(status);
  }
  {
    absl::MutexLock lock(&mu_);
    observed_ = observed;
  }
  Publish(*apis, *observed);
  if (after_pass_) after_pass_();
  ++passes_;
}

void Reconciler::Publish(const std::vector<ApiSpecPtr>& apis, const Observed& observed) {
  std::vector<gateway::ApiRoute> routes;
  for (const auto& api : apis) {
    const config::ApiConfig& config = *api->config;
    gateway::ApiRoute route;
    route.name = api->name();
    route.endpoint = config.networking.endpoint;
    route.api_gateway = config.networking.api_gateway;
    route.metrics_key = api->metrics_key();
    route.batch = config.kind == config::Kind::kBatchAPI;
    for (const auto& target : config.apis) route.targets.push_back({target.name, target.weight});
    if (const backends::ReplicaSetStatus* set = observed.Find(api->name())) {
      for (const auto& r : set->replicas) {
        if (r.state == ReplicaState::kReady && r.endpoint.port > 0) {
          route.replicas.push_back(
              {r.id, r.endpoint.host, r.endpoint.port, r.endpoint.unix_socket});
        }
      }
    }
    routes.push_back(std::move(route));
  }
  {
    absl::MutexLock lock(&mu_);
    if (routes == routes_->apis()) return;
    int64_t version = std::max(clock_.NowMs(), routes_version_.load() + 1);
    auto table = gateway::RouteTable::Build(version, std::move(routes));
    if (!table.ok()) {
      std::cerr << "reconcile: " << table.status() << std::endl;
      return;
    }
    routes_ = *table;
    routes_version_ = version;
  }
  if (on_routes_changed_) on_routes_changed_();
}

void Reconciler::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    try {
      Step();
    } catch (const std::exception& e) {
      // A malformed record must not take the control plane down; report and go on.
      std::cerr << "reconcile: " << e.what() << std::endl;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.interval_ms));
  }
}

void Reconciler::StopAll() { backend_.StopAll(); }

}  // namespace cortex::op
