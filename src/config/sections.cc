// The compute, networking, autoscaling, update_strategy, monitoring and apis sections (spec §2).

#include "config/sections.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/string_view.h>
#include <absl/strings/strip.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/yaml_reader.h"

namespace cortex::config::internal {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMinCpuMilli = 20;
constexpr int64_t kMinMemBytes = 20 * 1024 * 1024;
constexpr size_t kMaxEndpointLength = 1000;
constexpr int kNeuronCoresPerInf = 4;

// Reads a YAML map, or an empty one when the section is absent.
absl::StatusOr<YamlMap> SectionMap(const std::optional<YAML::Node>& node) {
  return YamlMap::Create(node ? *node : YAML::Node(YAML::NodeType::Map));
}

absl::StatusOr<std::string> ReadEndpoint(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string endpoint, ReadString(node));
  if (endpoint.empty()) return NodeError(node, "cannot be empty");
  if (endpoint.size() > kMaxEndpointLength) {
    return NodeError(node,
                     absl::StrCat("must be no more than ", kMaxEndpointLength, " characters"));
  }
  for (char c : endpoint) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '/';
    if (!ok) {
      return NodeError(node, absl::StrCat(Quote(endpoint),
                                          " is not a valid endpoint (only letters, numbers, "
                                          "underscores, dashes, periods and slashes are allowed)"));
    }
  }
  if (absl::StrContains(endpoint, "//")) {
    return NodeError(
        node, absl::StrCat(Quote(endpoint), " is not a valid endpoint (it contains \"//\")"));
  }
  std::string normalized = endpoint[0] == '/' ? endpoint : absl::StrCat("/", endpoint);
  if (normalized.back() == '/') normalized.pop_back();
  if (normalized.empty()) return NodeError(node, "cannot be \"/\"");
  // The gateway's own endpoints (health, stats, metrics) live under /_cortex.
  if (normalized == "/_cortex" || absl::StartsWith(normalized, "/_cortex/")) {
    return NodeError(node, absl::StrCat(Quote(normalized),
                                        " is reserved for the platform's own endpoints "
                                        "(/_cortex/...); choose another endpoint"));
  }
  return normalized;
}

absl::StatusOr<int64_t> ReadQuantity(const YAML::Node& node,
                                     absl::StatusOr<int64_t> (*parse)(std::string_view)) {
  CONFIG_ASSIGN_OR_RETURN(std::string text, ReadScalarText(node));
  absl::StatusOr<int64_t> value = parse(text);
  if (!value.ok()) return NodeError(node, value.status().message());
  return value;
}

// A duration in whole seconds, at least `min_seconds`.
auto DurationReader(int64_t min_seconds) {
  return [min_seconds](const YAML::Node& node) -> absl::StatusOr<int64_t> {
    CONFIG_ASSIGN_OR_RETURN(std::string text, ReadScalarText(node));
    absl::StatusOr<int64_t> seconds = ParseDurationSeconds(text);
    if (!seconds.ok()) return NodeError(node, seconds.status().message());
    if (*seconds < min_seconds) {
      return NodeError(
          node, absl::StrCat("must be greater than or equal to ", FormatDuration(min_seconds)));
    }
    return seconds;
  };
}

// A number >= min (> min when `exclusive_min`), and < max_exclusive when given.
auto NumberReader(double min, bool exclusive_min, std::optional<double> max_exclusive = {}) {
  return [=](const YAML::Node& node) -> absl::StatusOr<double> {
    CONFIG_ASSIGN_OR_RETURN(double value, ReadNumber(node));
    if (exclusive_min && value <= min) {
      return NodeError(node, absl::StrCat("must be greater than ", min));
    }
    if (!exclusive_min && value < min) {
      return NodeError(node, absl::StrCat("must be greater than or equal to ", min));
    }
    if (max_exclusive && value >= *max_exclusive) {
      return NodeError(node, absl::StrCat("must be less than ", *max_exclusive));
    }
    return value;
  };
}

// "N%" with N in 0..100, or an integer >= 0; returned in canonical form ("25%", "3").
absl::StatusOr<std::string> ReadSurgeOrUnavailable(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string text, ReadScalarText(node));
  absl::string_view digits = text;
  bool percent = absl::ConsumeSuffix(&digits, "%");
  int64_t value = -1;
  bool ok = !digits.empty() && digits.find_first_not_of("0123456789") == absl::string_view::npos &&
            absl::SimpleAtoi(digits, &value) && value <= (percent ? 100 : kMaxInt);
  if (!ok) {
    return NodeError(node, absl::StrCat(Quote(text),
                                        " is not a valid value - must be an integer percentage "
                                        "(e.g. 25%, to denote a percentage of desired replicas) "
                                        "or a positive integer (e.g. 5, to denote a number of "
                                        "replicas)"));
  }
  return percent ? absl::StrCat(value, "%") : absl::StrCat(value);
}

}  // namespace

absl::StatusOr<ComputeConfig> ParseCompute(const std::optional<YAML::Node>& node,
                                           const ParseContext& ctx) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, SectionMap(node));
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"cpu", "mem", "gpu", "inf"}));
  ComputeConfig c;
  auto cpu = [](const YAML::Node& n) -> absl::StatusOr<int64_t> {
    CONFIG_ASSIGN_OR_RETURN(int64_t milli, ReadQuantity(n, ParseCpuMilli));
    if (milli < kMinCpuMilli) return NodeError(n, "must be greater than or equal to 20m");
    return milli;
  };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int64_t> cpu_milli, map.Read<int64_t>("cpu", cpu));
  c.cpu_milli = cpu_milli.value_or(kDefaultCpuMilli);
  auto mem = [](const YAML::Node& n) -> absl::StatusOr<int64_t> {
    CONFIG_ASSIGN_OR_RETURN(int64_t bytes, ReadQuantity(n, ParseMemBytes));
    if (bytes < kMinMemBytes) return NodeError(n, "must be greater than or equal to 20Mi");
    return bytes;
  };
  CONFIG_ASSIGN_OR_RETURN(c.mem_bytes, map.Read<int64_t>("mem", mem));
  auto count = [](const YAML::Node& n) { return ReadIntInRange(n, 0, kMaxInt); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> gpu, map.Read<int>("gpu", count));
  c.gpu = gpu.value_or(0);
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> inf, map.Read<int>("inf", count));
  c.inf = inf.value_or(0);
  if (c.inf > 0) {
    if (ctx.local()) return map.ErrorAt("inf", "inf is not supported on local provider");
    if (c.gpu > 0) return map.ErrorAt("inf", "gpu and inf resources cannot be used together");
    if (c.inf > 1) {
      return map.ErrorAt("inf", absl::StrCat("cannot request ", c.inf,
                                             " Infs (currently only 1 Inf can be used per API "
                                             "replica)"));
    }
  }
  return c;
}

absl::Status CheckInferentia(const PredictorConfig& predictor, const ComputeConfig& compute) {
  if (compute.inf == 0) return absl::OkStatus();
  if (predictor.type == "onnx") {
    return absl::InvalidArgumentError("inf is not supported for the onnx predictor type");
  }
  int cores = compute.inf * kNeuronCoresPerInf;
  if (cores % predictor.processes_per_replica != 0) {
    std::vector<int> acceptable;
    for (int i = 1; i <= cores; ++i) {
      if (cores % i == 0) acceptable.push_back(i);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot evenly distribute ", compute.inf, " Inferentia ASIC(s) (", cores,
        " NeuronCores total) over ", predictor.processes_per_replica,
        " processes - acceptable numbers of processes are ", absl::StrJoin(acceptable, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<NetworkingConfig> ParseNetworking(const std::optional<YAML::Node>& node,
                                                 const ParseContext& ctx) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, SectionMap(node));
  if (ctx.kind == Kind::kRealtimeAPI) {
    CONFIG_RETURN_IF_ERROR(map.CheckKeys({"endpoint", "api_gateway", "local_port"}));
  } else {
    CONFIG_RETURN_IF_ERROR(
        map.CheckKeys({"endpoint", "api_gateway"}, {"local_port"},
                      absl::StrCat("for ", std::string(KindName(ctx.kind)), " kind")));
  }
  NetworkingConfig n;
  CONFIG_ASSIGN_OR_RETURN(std::optional<std::string> endpoint,
                          map.Read<std::string>("endpoint", ReadEndpoint));
  n.endpoint = endpoint ? *endpoint : absl::StrCat("/", ctx.name);
  auto gateway = [](const YAML::Node& v) { return ReadEnum(v, {"public", "none"}); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<std::string> api_gateway,
                          map.Read<std::string>("api_gateway", gateway));
  if (api_gateway == "public" && !ctx.options.cluster_api_gateway) {
    return map.FieldError("api_gateway",
                          "\"public\" is not allowed because the api gateway is disabled "
                          "cluster-wide (api_gateway: none in the cluster configuration)");
  }
  n.api_gateway = api_gateway.value_or(ctx.options.cluster_api_gateway ? "public" : "none");
  auto port = [](const YAML::Node& v) { return ReadIntInRange(v, 1, 65535); };
  CONFIG_ASSIGN_OR_RETURN(n.local_port, map.Read<int>("local_port", port));
  return n;
}

absl::StatusOr<AutoscalingConfig> ParseAutoscaling(const std::optional<YAML::Node>& node,
                                                   const PredictorConfig& predictor,
                                                   int replicas_limit) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, SectionMap(node));
  CONFIG_RETURN_IF_ERROR(
      map.CheckKeys({"min_replicas", "max_replicas", "init_replicas", "target_replica_concurrency",
                     "max_replica_concurrency", "window", "downscale_stabilization_period",
                     "upscale_stabilization_period", "max_downscale_factor", "max_upscale_factor",
                     "downscale_tolerance", "upscale_tolerance"}));
  AutoscalingConfig a;
  auto replicas = [replicas_limit](const YAML::Node& n) -> absl::StatusOr<int> {
    auto count = ReadIntInRange(n, 1, kMaxInt);
    if (count.ok() && *count > replicas_limit) {
      return NodeError(n, absl::StrCat("must be less than or equal to ", replicas_limit,
                                       " (the most replicas this cluster runs per api, limits: "
                                       "replicas_per_api)"));
    }
    return count;
  };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> min_replicas, map.Read<int>("min_replicas", replicas));
  a.min_replicas = min_replicas.value_or(a.min_replicas);
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> max_replicas, map.Read<int>("max_replicas", replicas));
  a.max_replicas = max_replicas.value_or(a.max_replicas);
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> init_replicas,
                          map.Read<int>("init_replicas", replicas));
  a.init_replicas = init_replicas.value_or(a.min_replicas);

  CONFIG_ASSIGN_OR_RETURN(std::optional<double> target,
                          map.Read<double>("target_replica_concurrency", NumberReader(0, true)));
  a.target_replica_concurrency = target.value_or(
      static_cast<double>(predictor.processes_per_replica) * predictor.threads_per_process);
  auto max_concurrency = [](const YAML::Node& n) { return ReadIntInRange(n, 1, 30000); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> max_replica_concurrency,
                          map.Read<int>("max_replica_concurrency", max_concurrency));
  a.max_replica_concurrency = max_replica_concurrency.value_or(a.max_replica_concurrency);

  CONFIG_ASSIGN_OR_RETURN(std::optional<int64_t> window,
                          map.Read<int64_t>("window", DurationReader(10)));
  if (window && *window % 10 != 0) return map.FieldError("window", "must be a multiple of 10s");
  a.window_s = window.value_or(a.window_s);
  CONFIG_ASSIGN_OR_RETURN(std::optional<int64_t> downscale_period,
                          map.Read<int64_t>("downscale_stabilization_period", DurationReader(0)));
  a.downscale_stabilization_period_s =
      downscale_period.value_or(a.downscale_stabilization_period_s);
  CONFIG_ASSIGN_OR_RETURN(std::optional<int64_t> upscale_period,
                          map.Read<int64_t>("upscale_stabilization_period", DurationReader(0)));
  a.upscale_stabilization_period_s = upscale_period.value_or(a.upscale_stabilization_period_s);

  CONFIG_ASSIGN_OR_RETURN(std::optional<double> max_downscale_factor,
                          map.Read<double>("max_downscale_factor", NumberReader(0, false, 1.0)));
  a.max_downscale_factor = max_downscale_factor.value_or(a.max_downscale_factor);
  CONFIG_ASSIGN_OR_RETURN(std::optional<double> max_upscale_factor,
                          map.Read<double>("max_upscale_factor", NumberReader(1, true)));
  a.max_upscale_factor = max_upscale_factor.value_or(a.max_upscale_factor);
  CONFIG_ASSIGN_OR_RETURN(std::optional<double> downscale_tolerance,
                          map.Read<double>("downscale_tolerance", NumberReader(0, false, 1.0)));
  a.downscale_tolerance = downscale_tolerance.value_or(a.downscale_tolerance);
  CONFIG_ASSIGN_OR_RETURN(std::optional<double> upscale_tolerance,
                          map.Read<double>("upscale_tolerance", NumberReader(0, false)));
  a.upscale_tolerance = upscale_tolerance.value_or(a.upscale_tolerance);

  if (a.min_replicas > a.max_replicas) {
    return map.ErrorAt("min_replicas", absl::StrCat("min_replicas cannot be greater than "
                                                    "max_replicas (",
                                                    a.min_replicas, " > ", a.max_replicas, ")"));
  }
  if (a.init_replicas > a.max_replicas) {
    return map.ErrorAt("init_replicas", absl::StrCat("init_replicas cannot be greater than "
                                                     "max_replicas (",
                                                     a.init_replicas, " > ", a.max_replicas, ")"));
  }
  if (a.init_replicas < a.min_replicas) {
    return map.ErrorAt("init_replicas", absl::StrCat("init_replicas cannot be less than "
                                                     "min_replicas (",
                                                     a.init_replicas, " < ", a.min_replicas, ")"));
  }
  if (a.target_replica_concurrency > a.max_replica_concurrency) {
    return map.ErrorAt("target_replica_concurrency",
                       absl::StrCat("target_replica_concurrency (", a.target_replica_concurrency,
                                    ") cannot be greater than max_replica_concurrency (",
                                    a.max_replica_concurrency, ")"));
  }
  return a;
}

absl::StatusOr<UpdateStrategyConfig> ParseUpdateStrategy(const std::optional<YAML::Node>& node) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, SectionMap(node));
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"max_surge", "max_unavailable"}));
  UpdateStrategyConfig u;
  CONFIG_ASSIGN_OR_RETURN(std::optional<std::string> max_surge,
                          map.Read<std::string>("max_surge", ReadSurgeOrUnavailable));
  u.max_surge = max_surge.value_or(u.max_surge);
  CONFIG_ASSIGN_OR_RETURN(std::optional<std::string> max_unavailable,
                          map.Read<std::string>("max_unavailable", ReadSurgeOrUnavailable));
  u.max_unavailable = max_unavailable.value_or(u.max_unavailable);
  auto zero = [](const std::string& v) { return v == "0" || v == "0%"; };
  if (zero(u.max_surge) && zero(u.max_unavailable)) {
    return map.ErrorAt("max_surge", "max_surge and max_unavailable cannot both be zero");
  }
  return u;
}

absl::StatusOr<MonitoringConfig> ParseMonitoring(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(node));
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"model_type", "key"}));
  MonitoringConfig m;
  auto model_type = [](const YAML::Node& n) {
    return ReadEnum(n, {"classification", "regression"});
  };
  CONFIG_ASSIGN_OR_RETURN(m.model_type, map.Read<std::string>("model_type", model_type));
  CONFIG_ASSIGN_OR_RETURN(m.key, map.Read<std::string>("key", ReadString));
  return m;
}

absl::StatusOr<std::vector<SplitterTarget>> ParseSplitterApis(const YAML::Node& node) {
  if (!node.IsSequence()) return NodeError(node, "must be a list");
  if (node.size() == 0) return NodeError(node, "must contain at least 1 element");
  std::vector<SplitterTarget> targets;
  std::set<std::string> names;
  int64_t total = 0;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    auto parse = [&]() -> absl::StatusOr<SplitterTarget> {
      CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(item));
      CONFIG_RETURN_IF_ERROR(map.CheckKeys({"name", "weight"}));
      SplitterTarget t;
      CONFIG_ASSIGN_OR_RETURN(t.name, map.ReadRequired<std::string>("name", ReadString));
      if (t.name.empty()) return map.FieldError("name", "cannot be empty");
      if (!names.insert(t.name).second) {
        return map.FieldError("name", absl::StrCat("api ", Quote(t.name),
                                                   " is listed more than once (apis must be "
                                                   "unique)"));
      }
      auto weight = [](const YAML::Node& n) { return ReadIntInRange(n, 0, 100); };
      CONFIG_ASSIGN_OR_RETURN(t.weight, map.ReadRequired<int>("weight", weight));
      return t;
    };
    absl::StatusOr<SplitterTarget> target = parse();
    if (!target.ok()) return InField(absl::StrCat(i), target.status());
    total += target->weight;
    targets.push_back(*std::move(target));
  }
  if (total != 100) {
    return NodeError(node, absl::StrCat("expected weights to sum to 100 but found ", total));
  }
  return targets;
}

}  // namespace cortex::config::internal
