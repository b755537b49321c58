#include "common/instance_spec.h"

namespace cortex {

namespace {

nlohmann::json Placed(nlohmann::json api, const InstancePlace& place) {
  api["project_dir"] = place.project_dir;
  api["models_cache"] = place.models_cache;
  api["models_manifest"] = place.models_manifest;
  return api;
}

}  // namespace

nlohmann::json ReplicaSpecFile(nlohmann::json api, const InstancePlace& place,
                               const std::string& replica_id, const std::vector<int>& gpu_ids) {
  nlohmann::json spec = Placed(std::move(api), place);
  spec["replica_id"] = replica_id;
  spec["gpu_ids"] = gpu_ids;
  return spec;
}

nlohmann::json WorkerSpecFile(nlohmann::json api, const InstancePlace& place,
                              const nlohmann::json& job_spec) {
  nlohmann::json spec = Placed(std::move(api), place);
  spec["job_spec"] = job_spec;
  return spec;
}

}  // namespace cortex
