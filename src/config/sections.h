// Parsers for the sections of one API item (private to the config module).
//
// Each parser returns its section with every default applied, or the first error. Errors carry
// the field path inside the section ("processes_per_replica: ..."); the caller prefixes the
// section name and the "<file>: <name> (<Kind>)" label.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "config/api_config.h"

namespace cortex::config::internal {

struct ParseContext {
  const ParseOptions& options;
  Kind kind;
  std::string name;

  bool local() const { return options.provider == "local"; }
};

// `compute` must be parsed first: the default image and the batching limits depend on it.
absl::StatusOr<PredictorConfig> ParsePredictor(const YAML::Node& node, const ParseContext& ctx,
                                               const ComputeConfig& compute);

// Absent sections (nullopt) get their defaults.
absl::StatusOr<ComputeConfig> ParseCompute(const std::optional<YAML::Node>& node,
                                           const ParseContext& ctx);
absl::StatusOr<NetworkingConfig> ParseNetworking(const std::optional<YAML::Node>& node,
                                                 const ParseContext& ctx);
// Replica counts above `max_replicas` (the cluster's limit) are refused.
// Replica counts above `max_replicas` (the cluster's limit) are refused.
absl::StatusOr<AutoscalingConfig> ParseAutoscaling(const std::optional<YAML::Node>& node,
                                                   const PredictorConfig& predictor,
                                                   int max_replicas);
absl::StatusOr<UpdateStrategyConfig> ParseUpdateStrategy(const std::optional<YAML::Node>& node);
absl::StatusOr<MonitoringConfig> ParseMonitoring(const YAML::Node& node);
absl::StatusOr<std::vector<SplitterTarget>> ParseSplitterApis(const YAML::Node& node);

// Rules that span compute and predictor ("compute: ..." errors).
absl::Status CheckInferentia(const PredictorConfig& predictor, const ComputeConfig& compute);

}  // namespace cortex::config::internal
