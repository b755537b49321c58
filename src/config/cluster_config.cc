#include "config/cluster_config.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>

#include "common/status.h"
#include "config/api_config.h"

namespace cortex::config {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One limit: its name in cluster.yaml, whether it is a size ("10Mi") or a count, its range, and
// where it lives.
struct LimitField {
  const char* name;
  bool bytes;
  int64_t min, max;
  std::function<void(ClusterLimits&, int64_t)> set;
  std::function<int64_t(const ClusterLimits&)> get;
};

template <typename T>
LimitField Field(const char* name, bool bytes, int64_t min, int64_t max, T ClusterLimits::*member) {
  return {name,
          bytes,
          min,
          max,
          [member](ClusterLimits& l, int64_t v) { l.*member = static_cast<T>(v); },
          [member](const ClusterLimits& l) { return static_cast<int64_t>(l.*member); }};
}

const std::vector<LimitField>& Fields() {
  constexpr int64_t kTiB = 1ll << 40;
  static const std::vector<LimitField> fields = {
      Field("api_gateway_body", true, 1, kTiB, &ClusterLimits::api_gateway_body_bytes),
      Field("load_balancer_body", true, 1, kTiB, &ClusterLimits::load_balancer_body_bytes),
      Field("operator_body", true, 1024, kTiB, &ClusterLimits::operator_body_bytes),
      Field("bundle", true, 1024, kTiB, &ClusterLimits::bundle_bytes),
      Field("header", true, 1024, 16 << 20, &ClusterLimits::header_bytes),
      Field("json_depth", false, 2, 10'000, &ClusterLimits::json_depth),
      Field("config", true, 1024, 1ll << 30, &ClusterLimits::config_bytes),
      Field("job_submission", true, 1024, 1ll << 30, &ClusterLimits::job_submission_bytes),
      Field("batches_per_job", false, 1, 1'000'000'000, &ClusterLimits::batches_per_job),
      Field("workers_per_job", false, 1, 10'000, &ClusterLimits::workers_per_job),
      Field("replicas_per_api", false, 1, 100'000, &ClusterLimits::replicas_per_api),
      Field("log_file", true, 64 << 10, kTiB, &ClusterLimits::log_file_bytes),
      Field("log_line", true, 256, 64 << 20, &ClusterLimits::log_line_bytes),
  };
  return fields;
}

// Stores `value` if it is in the field's range.
absl::Status SetInRange(ClusterLimits& limits, const LimitField& f, int64_t value) {
  if (value < f.min || value > f.max) {
    return absl::InvalidArgumentError(
        absl::StrCat(value, " is out of range (", f.min, " to ", f.max, ")"));
  }
  f.set(limits, value);
  return absl::OkStatus();
}

absl::Status SetLimit(ClusterLimits& limits, const LimitField& f, const std::string& text) {
  int64_t value = 0;
  if (f.bytes) {
    auto parsed = ParseMemBytes(text);
    if (!parsed.ok()) return parsed.status();
    value = *parsed;
  } else if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an integer"));
  }
  return SetInRange(limits, f, value);
}

absl::Status AddLocalPath(ClusterConfig& config, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("allowed_local_paths: \"", path, "\" must be an absolute path"));
  }
  config.allowed_local_paths.push_back(fs::path(path).lexically_normal());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClusterConfig> ClusterConfig::FromYaml(std::string_view text,
                                                      std::string_view provider) {
  ClusterConfig config;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cluster configuration: ", e.what()));
  }
  if (root.IsNull()) return config;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("cluster configuration: must be a map of settings");
  }
  for (const auto& entry : root) {
    std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (key == "limits") {
      if (value.IsNull()) continue;
      if (!value.IsMap()) return absl::InvalidArgumentError("limits: must be a map");
      for (const auto& limit : value) {
        std::string name = limit.first.as<std::string>();
        const LimitField* field = nullptr;
        for (const auto& f : Fields()) {
          if (name == f.name) field = &f;
        }
        if (field == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("limits: ", name, " is not a known limit"));
        }
        if (!limit.second.IsScalar()) {
          return absl::InvalidArgumentError(absl::StrCat("limits: ", name, ": must be a value"));
        }
        absl::Status st = SetLimit(config.limits, *field, limit.second.Scalar());
        if (!st.ok())
          return absl::InvalidArgumentError(absl::StrCat("limits: ", name, ": ", st.message()));
      }
    } else if (key == "allowed_local_paths") {
      if (value.IsNull()) continue;
      if (!value.IsSequence()) {
        return absl::InvalidArgumentError("allowed_local_paths: must be a list of directories");
      }
      for (const auto& path : value) {
        if (!path.IsScalar()) {
          return absl::InvalidArgumentError("allowed_local_paths: must be a list of directories");
        }
        RETURN_IF_ERROR(AddLocalPath(config, path.Scalar()));
      }
    } else if (KubernetesConfig::IsKey(key)) {
      if (provider != "kubernetes") {
        return absl::InvalidArgumentError(
            absl::StrCat(key,
                         " is a setting of the kubernetes provider (cortex cluster up --provider "
                         "kubernetes), not of the ",
                         std::string(provider), " provider"));
      }
      RETURN_IF_ERROR(config.kubernetes.Set(key, value));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          key, " is not a cluster setting (expected limits, allowed_local_paths",
          provider == "kubernetes" ? ", or a Kubernetes setting: see docs/kubernetes.md" : "",
          ")"));
    }
  }
  RETURN_IF_ERROR(config.kubernetes.Validate());
  return config;
}

absl::StatusOr<ClusterConfig> ClusterConfig::FromJson(const json& in) {
  ClusterConfig config;
  if (!in.is_object()) return absl::InvalidArgumentError("cluster configuration: not an object");
  if (auto limits = in.find("limits"); limits != in.end() && limits->is_object()) {
    for (const auto& f : Fields()) {
      auto it = limits->find(f.name);
      if (it == limits->end()) continue;
      absl::Status st = it->is_number_integer() ? SetInRange(config.limits, f, it->get<int64_t>())
                                                : absl::InvalidArgumentError("not an integer");
      if (!st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("limits: ", f.name, ": ", st.message()));
      }
    }
  }
  if (auto paths = in.find("allowed_local_paths"); paths != in.end() && paths->is_array()) {
    for (const auto& p : *paths) {
      if (!p.is_string()) return absl::InvalidArgumentError("allowed_local_paths: not a string");
      RETURN_IF_ERROR(AddLocalPath(config, p.get<std::string>()));
    }
  }
  if (auto k8s = in.find("kubernetes"); k8s != in.end()) {
    auto parsed = KubernetesConfig::FromJson(*k8s);
    if (!parsed.ok()) return Annotate(parsed.status(), "kubernetes");
    config.kubernetes = std::move(*parsed);
  }
  return config;
}

json ClusterConfig::ToJson() const {
  json limits_json = json::object();
  for (const auto& f : Fields()) limits_json[f.name] = f.get(limits);
  json paths = json::array();
  for (const auto& p : allowed_local_paths) paths.push_back(p.string());
  return {
      {"limits", limits_json}, {"allowed_local_paths", paths}, {"kubernetes", kubernetes.ToJson()}};
}

absl::StatusOr<ClusterConfig> ClusterConfig::Load(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return ClusterConfig();
  std::ifstream in(path);
  json parsed = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not valid JSON"));
  }
  auto config = FromJson(parsed);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", config.status().message()));
  }
  return config;
}

}  // namespace cortex::config
