// The control loop: turns the deployed APIs into replica sets for the Backend, observes what it
// runs, logs what happened, and publishes the route table (ready replicas only) that the gateways
// follow. Each pass reads the store, calls the Backend without holding any lock, then swaps in
// the new observation and routes, so REST handlers never wait for a probe.
//
// Thread-safe: Step()/Run() run on the control-loop thread; observed(), routes() and
// routes_version() may be called from any thread.
#pragma once

#include <absl/synchronization/mutex.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "common/clock.h"
#include "gateway/route_table.h"
#include "operator/api_logs.h"
#include "operator/api_spec.h"
#include "store/state_store.h"

namespace cortex::op {

// The latest observation of every RealtimeAPI's replicas.
struct Observed {
  int64_t at_ms = 0;
  std::map<std::string, backends::ReplicaSetStatus> replica_sets;  // by API name
  // The API's replicas, or null when none have been observed.
  const backends::ReplicaSetStatus* Find(const std::string& api) const;
  // The API's replicas with `updated` relative to `record` (an observation made before the
  // record's version was stored counts every replica as stale).
  backends::ReplicaSetStatus For(const store::ApiRecord& record) const;
};

struct ReconcilerOptions {
  std::string gateway_url;  // given to replicas for chaining ($CORTEX_API_GATEWAY_URL)
  std::string lb_url;       // $CORTEX_LOAD_BALANCER_URL
  std::string default_python = "/usr/bin/python3";
  int interval_ms = 200;
};

class Reconciler {
 public:
  Reconciler(ReconcilerOptions options, store::StateStore& store, SpecCache& specs,
             backends::Backend& backend, const ApiLogs& logs, const Clock& clock);

  // Runs after each pass on the control-loop thread (batch jobs hang their work here).
  void AfterEachPass(std::function<void()> step) { after_pass_ = std::move(step); }
  // Called (from the control-loop thread) whenever the route table changes.
  void OnRoutesChanged(std::function<void()> callback) { on_routes_changed_ = std::move(callback); }

  void Step();
  void Run(const std::atomic<bool>& stop);
  // Cluster down: every workload stops (the APIs stay stored and come back at the next start).
  void StopAll();

  std::shared_ptr<const Observed> observed() const;
  std::shared_ptr<const gateway::RouteTable> routes() const;
  int64_t routes_version() const { return routes_version_.load(); }
  // Passes completed since the start (tests wait for passes instead of sleeping).
  int64_t passes() const { return passes_.load(); }

 private:
  backends::ReplicaSetSpec SetFor(const ApiSpec& api) const;
  // Publishes the routes of `apis` with the replicas `observed` saw ready.
  void Publish(const std::vector<ApiSpecPtr>& apis, const Observed& observed);

  const ReconcilerOptions options_;
  store::StateStore& store_;
  SpecCache& specs_;
  backends::Backend& backend_;
  const ApiLogs& logs_;
  const Clock& clock_;
  std::function<void()> after_pass_;
  std::function<void()> on_routes_changed_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Observed> observed_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const gateway::RouteTable> routes_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> routes_version_{0};
  std::atomic<int64_t> passes_{0};
};

}  // namespace cortex::op
