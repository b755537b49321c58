// ApiConfig <-> JSON: the defaulted configuration under the YAML field names.

#include <absl/status/status.h>
#include <absl/strings/str_cat.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "config/api_config.h"
#include "config/quantity.h"

namespace cortex::config {
namespace {

using nlohmann::json;

template <typename T>
json OrNull(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

template <typename T>
std::optional<T> GetOptional(const json& object, const char* key) {
  if (!object.contains(key) || object.at(key).is_null()) return std::nullopt;
  return object.at(key).get<T>();
}

// An int field. get<int>() would cast a float or a boolean (undefined behaviour for 1e30) and
// truncate an integer past int's range; these throw like nlohmann does instead.
int GetInt(const json& object, const char* key) {
  const json& value = object.at(key);
  bool in_range = false;
  if (value.is_number_unsigned()) {
    in_range = value.get<uint64_t>() <= uint64_t{INT32_MAX};
  } else if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    in_range = v >= INT32_MIN && v <= INT32_MAX;
  }
  if (!in_range) {
    throw std::invalid_argument(absl::StrCat(key, ": not an int: ", value.dump()));
  }
  return static_cast<int>(value.get<int64_t>());
}

std::optional<int> GetOptionalInt(const json& object, const char* key) {
  if (!object.contains(key) || object.at(key).is_null()) return std::nullopt;
  return GetInt(object, key);
}

json PredictorToJson(const PredictorConfig& p) {
  return json{
      {"type", p.type},
      {"path", p.path},
      {"model_path", OrNull(p.model_path)},
      {"models", p.models},
      {"signature_key", OrNull(p.signature_key)},
      {"server_side_batching",
       p.server_side_batching ? json{{"max_batch_size", p.server_side_batching->max_batch_size},
                                     {"batch_interval", p.server_side_batching->batch_interval}}
                              : json(nullptr)},
      {"processes_per_replica", p.processes_per_replica},
      {"threads_per_process", p.threads_per_process},
      {"config", p.config},
      {"python_path", OrNull(p.python_path)},
      {"image", p.image},
      {"tensorflow_serving_image", OrNull(p.tensorflow_serving_image)},
      {"env", p.env},
      {"python", OrNull(p.python)},
  };
}

PredictorConfig PredictorFromJson(const json& j) {
  PredictorConfig p;
  p.type = j.at("type").get<std::string>();
  p.path = j.at("path").get<std::string>();
  p.model_path = GetOptional<std::string>(j, "model_path");
  p.models = j.value("models", json(nullptr));
  p.signature_key = GetOptional<std::string>(j, "signature_key");
  if (j.contains("server_side_batching") && j.at("server_side_batching").is_object()) {
    const json& b = j.at("server_side_batching");
    std::string interval = b.at("batch_interval").get<std::string>();
    absl::StatusOr<int64_t> nanos = internal::ParseDurationNanos(interval);
    if (!nanos.ok()) throw std::invalid_argument(std::string(nanos.status().message()));
    p.server_side_batching = BatchingConfig{GetInt(b, "max_batch_size"), interval, *nanos};
  }
  p.processes_per_replica = GetInt(j, "processes_per_replica");
  p.threads_per_process = GetInt(j, "threads_per_process");
  p.config = j.value("config", json::object());
  if (p.config.is_null()) p.config = json::object();
  p.python_path = GetOptional<std::string>(j, "python_path");
  p.image = j.at("image").get<std::string>();
  p.tensorflow_serving_image = GetOptional<std::string>(j, "tensorflow_serving_image");
  if (j.contains("env") && !j.at("env").is_null()) {
    p.env = j.at("env").get<std::map<std::string, std::string>>();
  }
  p.python = GetOptional<std::string>(j, "python");
  return p;
}

// Parses a quantity or duration string from the JSON, or throws like nlohmann does.
int64_t Parsed(const absl::StatusOr<int64_t>& value, const char* key) {
  if (!value.ok()) {
    throw std::invalid_argument(absl::StrCat(key, ": ", value.status().message()));
  }
  return *value;
}

}  // namespace

json ApiConfig::ToJson() const {
  json j{{"name", name}, {"kind", std::string(KindName(kind))}};
  if (kind != Kind::kTrafficSplitter && predictor) j["predictor"] = PredictorToJson(*predictor);
  j["networking"] = {{"endpoint", networking.endpoint}, {"api_gateway", networking.api_gateway}};
  if (kind == Kind::kRealtimeAPI) j["networking"]["local_port"] = OrNull(networking.local_port);
  if (kind == Kind::kTrafficSplitter) {
    json targets = json::array();
    for (const SplitterTarget& t : apis)
      targets.push_back({{"name", t.name}, {"weight", t.weight}});
    j["apis"] = std::move(targets);
    return j;
  }
  j["compute"] = {
      {"cpu", FormatCpuMilli(compute.cpu_milli)},
      {"mem", compute.mem_bytes ? json(FormatMemBytes(*compute.mem_bytes)) : json(nullptr)},
      {"gpu", compute.gpu},
      {"inf", compute.inf},
  };
  if (kind != Kind::kRealtimeAPI) return j;
  const AutoscalingConfig& a = autoscaling;
  j["autoscaling"] = {
      {"min_replicas", a.min_replicas},
      {"max_replicas", a.max_replicas},
      {"init_replicas", a.init_replicas},
      {"target_replica_concurrency", a.target_replica_concurrency},
      {"max_replica_concurrency", a.max_replica_concurrency},
      {"window", FormatDuration(a.window_s)},
      {"downscale_stabilization_period", FormatDuration(a.downscale_stabilization_period_s)},
      {"upscale_stabilization_period", FormatDuration(a.upscale_stabilization_period_s)},
      {"max_downscale_factor", a.max_downscale_factor},
      {"max_upscale_factor", a.max_upscale_factor},
      {"downscale_tolerance", a.downscale_tolerance},
      {"upscale_tolerance", a.upscale_tolerance},
  };
  j["update_strategy"] = {{"max_surge", update_strategy.max_surge},
                          {"max_unavailable", update_strategy.max_unavailable}};
  j["monitoring"] = monitoring ? json{{"model_type", OrNull(monitoring->model_type)},
                                      {"key", OrNull(monitoring->key)}}
                               : json(nullptr);
  return j;
}

absl::StatusOr<ApiConfig> ApiConfig::FromJson(const json& j) {
  ApiConfig api;
  try {
    api.name = j.at("name").get<std::string>();
    std::string kind_name = j.at("kind").get<std::string>();
    std::optional<Kind> kind = ParseKind(kind_name);
    if (!kind) return absl::InvalidArgumentError(absl::StrCat("unknown kind \"", kind_name, "\""));
    api.kind = *kind;

    const json& networking = j.at("networking");
    api.networking.endpoint = networking.at("endpoint").get<std::string>();
    api.networking.api_gateway = networking.at("api_gateway").get<std::string>();
    api.networking.local_port = GetOptionalInt(networking, "local_port");

    if (api.kind == Kind::kTrafficSplitter) {
      for (const json& t : j.at("apis")) {
        api.apis.push_back({t.at("name").get<std::string>(), GetInt(t, "weight")});
      }
      return api;
    }
    api.predictor = PredictorFromJson(j.at("predictor"));
    const json& compute = j.at("compute");
    api.compute.cpu_milli = Parsed(ParseCpuMilli(compute.at("cpu").get<std::string>()), "cpu");
    if (std::optional<std::string> mem = GetOptional<std::string>(compute, "mem")) {
      api.compute.mem_bytes = Parsed(ParseMemBytes(*mem), "mem");
    }
    api.compute.gpu = GetInt(compute, "gpu");
    api.compute.inf = GetInt(compute, "inf");
    if (api.kind != Kind::kRealtimeAPI) return api;

    const json& a = j.at("autoscaling");
    AutoscalingConfig& out = api.autoscaling;
    out.min_replicas = GetInt(a, "min_replicas");
    out.max_replicas = GetInt(a, "max_replicas");
    out.init_replicas = GetInt(a, "init_replicas");
    out.target_replica_concurrency = a.at("target_replica_concurrency").get<double>();
    out.max_replica_concurrency = GetInt(a, "max_replica_concurrency");
    out.window_s = Parsed(ParseDurationSeconds(a.at("window").get<std::string>()), "window");
    out.downscale_stabilization_period_s =
        Parsed(ParseDurationSeconds(a.at("downscale_stabilization_period").get<std::string>()),
               "downscale_stabilization_period");
    out.upscale_stabilization_period_s =
        Parsed(ParseDurationSeconds(a.at("upscale_stabilization_period").get<std::string>()),
               "upscale_stabilization_period");
    out.max_downscale_factor = a.at("max_downscale_factor").get<double>();
    out.max_upscale_factor = a.at("max_upscale_factor").get<double>();
    out.downscale_tolerance = a.at("downscale_tolerance").get<double>();
    out.upscale_tolerance = a.at("upscale_tolerance").get<double>();

    const json& u = j.at("update_strategy");
    api.update_strategy.max_surge = u.at("max_surge").get<std::string>();
    api.update_strategy.max_unavailable = u.at("max_unavailable").get<std::string>();

    if (j.contains("monitoring") && !j.at("monitoring").is_null()) {
      const json& m = j.at("monitoring");
      api.monitoring = MonitoringConfig{GetOptional<std::string>(m, "key"),
                                        GetOptional<std::string>(m, "model_type")};
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed api config json: ", e.what()));
  }
  return api;
}

}  // namespace cortex::config
