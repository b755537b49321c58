// Parsed, defaulted and validated API configurations (the items of a cortex.yaml).
//
// ParseApiConfigs() turns the text of a cortex.yaml into ApiConfig values, applying the Cortex
// v0.24 defaults and validation rules (spec §2). Only the first error is reported, formatted
// "<file>: <name> (<Kind>): <field path>: <message>" (the name and kind parts are left out when
// the item has none yet). Pure functions; thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/defaults.h"

namespace cortex::config {

enum class Kind { kRealtimeAPI, kBatchAPI, kTrafficSplitter };
std::string_view KindName(Kind kind);  // "RealtimeAPI", ...
std::optional<Kind> ParseKind(std::string_view name);

// predictor.server_side_batching (docs/batching.md): a batch leaves the replica's queue when it
// holds max_batch_size requests or batch_interval has passed since its first request.
struct BatchingConfig {
  int max_batch_size = 0;      // 2..1024
  std::string batch_interval;  // as written, e.g. "100ms"
  int64_t interval_nanos = 0;  // > 0

  bool operator==(const BatchingConfig&) const = default;
};

struct PredictorConfig {
  std::string type;  // python | tensorflow | onnx
  std::string path;  // relative to the project directory
  std::optional<std::string> model_path;
  nlohmann::json models;  // null when not set; kept as JSON until a later issue uses it
  std::optional<std::string> signature_key;
  std::optional<BatchingConfig> server_side_batching;
  int processes_per_replica = 1;
  int threads_per_process = 1;
  nlohmann::json config = nlohmann::json::object();
  std::optional<std::string> python_path;
  std::string image;  // defaulted per type and compute (spec §2, "Default images")
  std::optional<std::string> tensorflow_serving_image;
  std::map<std::string, std::string> env;
  // Local provider only: the Python interpreter that runs the predictor (e.g. a virtualenv's).
  std::optional<std::string> python;

  // True when the predictor names models (model_path or models; docs/models.md).
  bool HasModels() const { return model_path.has_value() || !models.is_null(); }
};

struct NetworkingConfig {
  std::string endpoint;           // normalised: leading '/', no trailing '/'
  std::string api_gateway;        // "public" | "none"
  std::optional<int> local_port;  // RealtimeAPI only
};

struct ComputeConfig {
  int64_t cpu_milli = kDefaultCpuMilli;  // "200m"
  std::optional<int64_t> mem_bytes;      // null by default
  int gpu = 0;
  int inf = 0;
};

struct AutoscalingConfig {
  int min_replicas = kDefaultMinReplicas;
  int max_replicas = kDefaultMaxReplicas;
  int init_replicas = 1;                  // default: min_replicas
  double target_replica_concurrency = 1;  // default: processes × threads
  int max_replica_concurrency = kDefaultMaxReplicaConcurrency;
  int64_t window_s = kDefaultWindowS;
  int64_t downscale_stabilization_period_s = kDefaultDownscaleStabilizationS;
  int64_t upscale_stabilization_period_s = kDefaultUpscaleStabilizationS;
  double max_downscale_factor = kDefaultMaxDownscaleFactor;
  double max_upscale_factor = kDefaultMaxUpscaleFactor;
  double downscale_tolerance = kDefaultDownscaleTolerance;
  double upscale_tolerance = kDefaultUpscaleTolerance;
};

struct UpdateStrategyConfig {
  std::string max_surge = kDefaultMaxSurge;  // "N%" or an integer, as written
  std::string max_unavailable = kDefaultMaxUnavailable;
};

struct MonitoringConfig {
  std::optional<std::string> key;
  std::optional<std::string> model_type;  // classification | regression
};

struct SplitterTarget {
  std::string name;
  int weight = 0;
};

struct ApiConfig {
  std::string name;
  Kind kind = Kind::kRealtimeAPI;
  std::optional<PredictorConfig> predictor;  // RealtimeAPI, BatchAPI
  NetworkingConfig networking;
  ComputeConfig compute;                 // RealtimeAPI, BatchAPI
  AutoscalingConfig autoscaling;         // RealtimeAPI
  UpdateStrategyConfig update_strategy;  // RealtimeAPI
  std::optional<MonitoringConfig> monitoring;
  std::vector<SplitterTarget> apis;  // TrafficSplitter

  // The defaulted configuration as Cortex shows it (field names of the YAML; durations as
  // Go-style strings like "1m0s"; quantities as strings). Round-trips through FromJson.
  nlohmann::json ToJson() const;
  static absl::StatusOr<ApiConfig> FromJson(const nlohmann::json& json);
};

struct ParseOptions {
  std::string file_name = "cortex.yaml";  // used in error messages
  std::string provider = "local";         // local | kubernetes
  // Cluster-wide api_gateway setting: when false ("none"), api_gateway defaults to "none" and
  // "public" is an error.
  bool cluster_api_gateway = true;
  // The cluster's limits (config::ClusterLimits): replicas per API and the size of the file.
  int max_replicas = 1000;
  uint64_t max_config_bytes = 1ull << 20;
  // Project file checks (paths relative to the project root). Null means "do not check".
  std::function<bool(const std::string&)> file_exists;
  std::function<bool(const std::string&)> dir_exists;
};

// Parses and validates every API in `yaml_text`. All-or-nothing: any error fails the whole file.
// Also checks names and endpoints are unique within the file.
absl::StatusOr<std::vector<ApiConfig>> ParseApiConfigs(std::string_view yaml_text,
                                                       const ParseOptions& options);

// Quantity and duration helpers (exposed for tests and for other modules).
absl::StatusOr<int64_t> ParseCpuMilli(std::string_view text);         // "200m", "1", "0.5"
absl::StatusOr<int64_t> ParseMemBytes(std::string_view text);         // "1Gi", "500M", "1024"
absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view text);  // "10s", "1m30s"
std::string FormatDuration(int64_t seconds);                          // 90 -> "1m30s", 60 -> "1m0s"
// Canonical quantity strings that ParseCpuMilli / ParseMemBytes read back to the same value.
std::string FormatCpuMilli(int64_t milli);  // 200 -> "200m", 2000 -> "2"
std::string FormatMemBytes(int64_t bytes);  // 1073741824 -> "1Gi", 500000000 -> "500M"

// True for the images Cortex v0.24 defaults predictor.image to (quay.io/cortexlabs/...): they
// hold Cortex's own Go and Python servers, so providers that run images run the platform's
// image in their place (docs/kubernetes.md).
bool IsCortexDefaultImage(std::string_view image);

}  // namespace cortex::config
