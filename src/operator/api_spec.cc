#include "operator/api_spec.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cortex::op {

using nlohmann::json;

std::string EncodeSpec(const config::ApiConfig& api, const std::string& project_dir) {
  json spec = api.ToJson();
  spec["project_dir"] = project_dir;
  return spec.dump();
}

absl::StatusOr<ApiSpecPtr> SpecCache::Decode(const store::ApiRecord& record) {
  Decoded decoded;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = by_api_id_.find(record.api_id); it != by_api_id_.end()) decoded = it->second;
  }
  if (!decoded.config) {
    json spec = json::parse(record.spec_json, nullptr, false);
    if (!spec.is_object()) {
      return absl::DataLossError(absl::StrCat("the stored spec of ", record.name, " is not JSON"));
    }
    auto api = config::ApiConfig::FromJson(spec);
    if (!api.ok()) {
      return absl::DataLossError(
          absl::StrCat("the stored spec of ", record.name, ": ", api.status().message()));
    }
    auto project = spec.find("project_dir");
    decoded.config = std::make_shared<const config::ApiConfig>(std::move(*api));
    decoded.project_dir =
        project != spec.end() && project->is_string() ? project->get<std::string>() : "";
    absl::MutexLock lock(&mu_);
    by_api_id_[record.api_id] = decoded;
  }
  return std::make_shared<const ApiSpec>(ApiSpec{record, decoded.config, decoded.project_dir});
}

absl::StatusOr<std::vector<ApiSpecPtr>> SpecCache::List(store::StateStore& store) {
  ASSIGN_OR_RETURN(std::vector<store::ApiRecord> records, store.ListApis());
  std::vector<ApiSpecPtr> out;
  std::map<std::string, Decoded> keep;
  for (const auto& record : records) {
    auto spec = Decode(record);
    if (!spec.ok()) {
      std::cerr << "operator: " << spec.status().message() << std::endl;
      continue;
    }
    out.push_back(std::move(*spec));
  }
  // Forget the versions no API has any more.
  absl::MutexLock lock(&mu_);
  std::erase_if(by_api_id_, [&](const auto& entry) {
    return std::none_of(records.begin(), records.end(),
                        [&](const store::ApiRecord& r) { return r.api_id == entry.first; });
  });
  return out;
}

absl::StatusOr<std::optional<ApiSpecPtr>> SpecCache::Find(store::StateStore& store,
                                                          const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<store::ApiRecord> record, store.GetApi(name));
  if (!record) return std::optional<ApiSpecPtr>();
  ASSIGN_OR_RETURN(ApiSpecPtr spec, Decode(*record));
  return std::optional<ApiSpecPtr>(std::move(spec));
}

autoscaler::Settings AutoscalerSettings(const config::AutoscalingConfig& a) {
  autoscaler::Settings s;
  s.min_replicas = a.min_replicas;
  s.max_replicas = a.max_replicas;
  s.target_replica_concurrency = a.target_replica_concurrency;
  s.window_ms = a.window_s * 1000;
  s.downscale_stabilization_period_ms = a.downscale_stabilization_period_s * 1000;
  s.upscale_stabilization_period_ms = a.upscale_stabilization_period_s * 1000;
  s.max_downscale_factor = a.max_downscale_factor;
  s.max_upscale_factor = a.max_upscale_factor;
  s.downscale_tolerance = a.downscale_tolerance;
  s.upscale_tolerance = a.upscale_tolerance;
  return s;
}

std::string PythonFor(const config::ApiConfig& api, const std::string& fallback) {
  return api.predictor && api.predictor->python ? *api.predictor->python : fallback;
}

std::string EndpointUrl(const config::ApiConfig& api, const std::string& gateway_url,
                        const std::string& lb_url) {
  return (api.networking.api_gateway == "none" ? lb_url : gateway_url) + api.networking.endpoint;
}

}  // namespace cortex::op
