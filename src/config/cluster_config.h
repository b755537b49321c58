// The cluster's own settings (`cortex cluster up --config cluster.yaml`): the limits every server
// enforces, the local directories batch jobs may read, and the Kubernetes provider's placement
// and images. Every field has a default; an
// empty file is the defaults. See docs/security.md.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/kubernetes_config.h"

namespace cortex::config {

struct ClusterLimits {
  uint64_t api_gateway_body_bytes = 32ull << 20;     // request bodies on the API gateway
  uint64_t load_balancer_body_bytes = 512ull << 20;  // request bodies on the load balancer
  uint64_t operator_body_bytes = 16ull << 20;        // deploys, patches and other CLI requests
  uint64_t bundle_bytes = 512ull << 20;              // an uploaded project
  uint32_t header_bytes = 64 << 10;                  // request headers, every server
  int json_depth = 128;                              // nesting of JSON the operator parses
  uint64_t config_bytes = 1ull << 20;                // a cortex.yaml
  uint64_t job_submission_bytes = 10ull << 20;       // a batch job submission
  int64_t batches_per_job = 100'000;
  int workers_per_job = 16;
  int replicas_per_api = 1000;            // min_replicas, max_replicas, init_replicas
  uint64_t log_file_bytes = 64ull << 20;  // a log is rotated (one older file kept) past this
  uint32_t log_line_bytes = 64 << 10;     // longer predictor output lines are split
};

struct ClusterConfig {
  ClusterLimits limits;
  // Absolute directories whose files batch jobs may name as local paths (`s3_paths` without a
  // scheme, `delimited_files`); none by default.
  std::vector<std::filesystem::path> allowed_local_paths;
  // The Kubernetes provider's settings; the local provider refuses them in cluster.yaml.
  KubernetesConfig kubernetes;

  // `provider`: local | kubernetes.
  static absl::StatusOr<ClusterConfig> FromYaml(std::string_view text,
                                                std::string_view provider = "local");
  static absl::StatusOr<ClusterConfig> FromJson(const nlohmann::json& json);
  nlohmann::json ToJson() const;
  // The settings in `path` (JSON as ToJson writes it); the defaults when there is no such file.
  static absl::StatusOr<ClusterConfig> Load(const std::filesystem::path& path);
};

}  // namespace cortex::config
