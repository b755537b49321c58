// The gateway's view of where each API's ready replicas are. Immutable once built: the gateway
// shares one snapshot between requests (shared_ptr<const RouteTable>) and swaps it atomically
// when the operator publishes a new one. Thread-safe (immutable).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cortex::gateway {

struct ReplicaRoute {
  std::string id;
  std::string host;
  uint16_t port = 0;
  // The replica's Unix socket when it runs on the gateway's machine (the local provider): the
  // gateway prefers it to host:port. Empty elsewhere.
  std::string unix_socket = {};
  bool operator==(const ReplicaRoute&) const = default;
};

struct SplitTarget {
  std::string api;  // a RealtimeAPI's name
  int weight = 0;   // percent; a splitter's weights add up to 100
  bool operator==(const SplitTarget&) const = default;
};

struct ApiRoute {
  std::string name;
  std::string endpoint;  // exact path match, e.g. "/my-api"
  std::string api_gateway = "public";
  // Request metrics are per deployment, as Cortex's (APIName, PredictorID, DeploymentID): a
  // redeploy, an update that rolls replicas, or a refresh starts them from zero.
  std::string metrics_key;
  std::vector<ReplicaRoute> replicas;  // ready replicas only (RealtimeAPI)
  std::vector<SplitTarget> targets;    // TrafficSplitter: where its requests go
  bool batch = false;                  // BatchAPI: job requests go to the operator
  bool is_splitter() const { return !targets.empty(); }
  bool operator==(const ApiRoute&) const = default;
};

class RouteTable {
 public:
  // {"version": N, "apis": [{"name", "endpoint", "api_gateway", "replicas": [{id, host, port,
  // unix_socket?}],
  //                          "targets": [{"api", "weight"}] (splitters only)}]}
  static absl::StatusOr<std::shared_ptr<const RouteTable>> FromJson(const nlohmann::json& json);
  // Checks the routes (unique endpoints, splitters with a positive weight) and indexes them.
  static absl::StatusOr<std::shared_ptr<const RouteTable>> Build(int64_t version,
                                                                 std::vector<ApiRoute> apis);
  nlohmann::json ToJson() const;

  // The API whose endpoint is exactly `path` (a trailing '/' is ignored), or null.
  const ApiRoute* Find(std::string_view path) const;
  // The API called `name`, or null.
  const ApiRoute* FindByName(const std::string& name) const;
  int64_t version() const { return version_; }
  const std::vector<ApiRoute>& apis() const { return apis_; }

 private:
  int64_t version_ = 0;
  std::vector<ApiRoute> apis_;
  std::unordered_map<std::string, size_t> by_endpoint_;
  std::unordered_map<std::string, size_t> by_name_;
};

// Weighted random choice: index i with probability weights[i] / sum (zero weights are never
// chosen). `weights` must have a positive sum.
size_t PickWeighted(const std::vector<int>& weights, std::mt19937_64& rng);

// Least outstanding requests: the index of the replica with the fewest requests in flight,
// ties broken at random. `outstanding` must not be empty.
size_t PickLeastOutstanding(const std::vector<int64_t>& outstanding, std::mt19937_64& rng);

}  // namespace cortex::gateway
