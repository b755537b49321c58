// The spec file of one replica or batch worker, as every provider writes it and `cortex replica
// --spec` / `cortex worker-setup --spec` read it: the API's defaulted configuration
// (config::ApiConfig::ToJson) plus where this instance runs and keeps its models.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cortex {

struct InstancePlace {
  std::string project_dir;      // the extracted project it runs in
  std::string models_cache;     // the models cache shared by the instances of its machine
  std::string models_manifest;  // its own manifest of the models it has (docs/models.md)
};

// A replica: `gpu_ids` are the GPUs it was given (none where the platform does not choose).
nlohmann::json ReplicaSpecFile(nlohmann::json api, const InstancePlace& place,
                               const std::string& replica_id, const std::vector<int>& gpu_ids);

// A batch worker of the job whose spec is `job_spec`.
nlohmann::json WorkerSpecFile(nlohmann::json api, const InstancePlace& place,
                              const nlohmann::json& job_spec);

}  // namespace cortex
