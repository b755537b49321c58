// ParseApiConfigs: the file-level rules and the item-level ones (the sections are in
// predictor.cc and sections.cc, JSON in api_config_json.cc, quantities in quantity.cc).

#include "config/api_config.h"

#include <absl/status/status.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/string_view.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/sections.h"
#include "config/yaml_reader.h"

namespace cortex::config {
namespace {

using internal::InField;
using internal::NodeError;
using internal::ParseContext;
using internal::Quote;
using internal::YamlMap;

constexpr size_t kMaxNameLength = 42;
constexpr absl::string_view kSchemaHint =
    "cortex YAML configuration files must contain a list of maps";

// Every top-level key of any kind, so that a key of another kind gets a clearer message.
constexpr absl::string_view kAllTopLevelKeys[] = {
    "name",       "kind", "predictor", "networking", "compute", "autoscaling", "update_strategy",
    "monitoring", "apis"};

// ^[a-z]([-a-z0-9]*[a-z0-9])?$
bool IsDns1035(absl::string_view name) {
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (name.empty() || !lower(name.front()) || name.back() == '-') return false;
  for (char c : name) {
    if (!lower(c) && !digit(c) && c != '-') return false;
  }
  return true;
}

absl::StatusOr<std::string> ReadApiName(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string name, internal::ReadString(node));
  if (name.empty()) return NodeError(node, "cannot be empty");
  if (name.size() > kMaxNameLength) {
    return NodeError(
        node, absl::StrCat(Quote(name), " must be no more than ", kMaxNameLength, " characters"));
  }
  if (!IsDns1035(name)) {
    return NodeError(node, absl::StrCat(Quote(name),
                                        " must contain only lower case letters, numbers, and "
                                        "dashes, start with a letter, and cannot end with a dash"));
  }
  return name;
}

absl::StatusOr<Kind> ReadKind(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string text,
                          internal::ReadEnum(node, {"RealtimeAPI", "BatchAPI", "TrafficSplitter"}));
  return *ParseKind(text);
}

// Prefixes a section parser's error with the section name.
template <typename T>
absl::StatusOr<T> Section(absl::string_view name, absl::StatusOr<T> result) {
  if (!result.ok()) return InField(name, result.status());
  return result;
}

// The sections of a RealtimeAPI or BatchAPI.
absl::Status ParsePredictorKind(const YamlMap& map, const ParseContext& ctx, ApiConfig& api) {
  const bool realtime = ctx.kind == Kind::kRealtimeAPI;
  if (realtime) {
    CONFIG_RETURN_IF_ERROR(map.CheckKeys({"name", "kind", "predictor", "networking", "compute",
                                          "autoscaling", "update_strategy", "monitoring"}));
  } else {
    CONFIG_RETURN_IF_ERROR(map.CheckKeys({"name", "kind", "predictor", "networking", "compute"},
                                         kAllTopLevelKeys, "for BatchAPI kind"));
  }
  CONFIG_ASSIGN_OR_RETURN(api.compute,
                          Section("compute", internal::ParseCompute(map.Find("compute"), ctx)));
  std::optional<YAML::Node> predictor = map.Find("predictor");
  if (!predictor) return map.MissingKey("predictor");
  CONFIG_ASSIGN_OR_RETURN(
      api.predictor, Section("predictor", internal::ParsePredictor(*predictor, ctx, api.compute)));
  CONFIG_RETURN_IF_ERROR(
      InField("compute", internal::CheckInferentia(*api.predictor, api.compute)));
  CONFIG_ASSIGN_OR_RETURN(api.networking, Section("networking", internal::ParseNetworking(
                                                                    map.Find("networking"), ctx)));
  if (!realtime) return absl::OkStatus();
  CONFIG_ASSIGN_OR_RETURN(
      api.autoscaling,
      Section("autoscaling", internal::ParseAutoscaling(map.Find("autoscaling"), *api.predictor,
                                                        ctx.options.max_replicas)));
  CONFIG_ASSIGN_OR_RETURN(
      api.update_strategy,
      Section("update_strategy", internal::ParseUpdateStrategy(map.Find("update_strategy"))));
  if (std::optional<YAML::Node> monitoring = map.Find("monitoring")) {
    CONFIG_ASSIGN_OR_RETURN(api.monitoring,
                            Section("monitoring", internal::ParseMonitoring(*monitoring)));
  }
  return absl::OkStatus();
}

absl::Status ParseSplitterKind(const YamlMap& map, const ParseContext& ctx, ApiConfig& api) {
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"name", "kind", "networking", "apis"}, kAllTopLevelKeys,
                                       "for TrafficSplitter kind"));
  CONFIG_ASSIGN_OR_RETURN(api.networking, Section("networking", internal::ParseNetworking(
                                                                    map.Find("networking"), ctx)));
  std::optional<YAML::Node> apis = map.Find("apis");
  if (!apis) return map.MissingKey("apis");
  CONFIG_ASSIGN_OR_RETURN(api.apis, Section("apis", internal::ParseSplitterApis(*apis)));
  return absl::OkStatus();
}

// One item of the file. Errors are prefixed with what is known of the item so far:
// "<name> (<Kind>): ", "<name>: " or "api at index <i>: ".
absl::StatusOr<ApiConfig> ParseApi(const YAML::Node& node, size_t index,
                                   const ParseOptions& options) {
  std::string label = absl::StrCat("api at index ", index);
  absl::StatusOr<YamlMap> map = YamlMap::Create(node);
  if (!map.ok()) return InField(label, map.status());

  ApiConfig api;
  absl::StatusOr<std::string> name = map->ReadRequired<std::string>("name", ReadApiName);
  if (!name.ok()) return InField(label, name.status());
  api.name = *name;
  label = api.name;
  absl::StatusOr<Kind> kind = map->ReadRequired<Kind>("kind", ReadKind);
  if (!kind.ok()) return InField(label, kind.status());
  api.kind = *kind;
  label = absl::StrCat(api.name, " (", std::string(KindName(api.kind)), ")");

  ParseContext ctx{options, api.kind, api.name};
  absl::Status status = api.kind == Kind::kTrafficSplitter ? ParseSplitterKind(*map, ctx, api)
                                                           : ParsePredictorKind(*map, ctx, api);
  if (!status.ok()) return InField(label, status);
  return api;
}

absl::StatusOr<std::vector<ApiConfig>> ParseAll(absl::string_view yaml_text,
                                                const ParseOptions& options) {
  if (options.provider != "local" && options.provider != "kubernetes") {
    return absl::InvalidArgumentError(absl::StrCat("unknown provider ", Quote(options.provider),
                                                   " (must be local or kubernetes)"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid yaml: ", e.msg, " (line ", e.mark.line + 1, ")"));
  }
  if (!root.IsDefined() || root.IsNull() || (root.IsSequence() && root.size() == 0)) {
    return absl::InvalidArgumentError(
        "at least one API must be configured (the file must contain a list of maps, one per API)");
  }
  if (!root.IsSequence()) return NodeError(root, kSchemaHint);

  std::vector<ApiConfig> apis;
  for (size_t i = 0; i < root.size(); ++i) {
    CONFIG_ASSIGN_OR_RETURN(ApiConfig api, ParseApi(root[i], i, options));
    std::string label = absl::StrCat(api.name, " (", std::string(KindName(api.kind)), ")");
    for (const ApiConfig& other : apis) {
      if (other.name == api.name) {
        return NodeError(root[i], absl::StrCat(label, ": name ", Quote(api.name),
                                               " must be unique across apis (it is used more "
                                               "than once in this file)"));
      }
      if (other.networking.endpoint == api.networking.endpoint) {
        return NodeError(root[i], absl::StrCat(label,
                                               ": networking: endpoint: endpoint is "
                                               "already being used by ",
                                               other.name));
      }
      if (api.networking.local_port && other.networking.local_port == api.networking.local_port) {
        return NodeError(root[i], absl::StrCat(label, ": networking: local_port: port ",
                                               *api.networking.local_port,
                                               " is already being used by ", other.name));
      }
    }
    apis.push_back(std::move(api));
  }
  return apis;
}

}  // namespace

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kRealtimeAPI:
      return "RealtimeAPI";
    case Kind::kBatchAPI:
      return "BatchAPI";
    case Kind::kTrafficSplitter:
      return "TrafficSplitter";
  }
  return "unknown";
}

std::optional<Kind> ParseKind(std::string_view name) {
  for (Kind kind : {Kind::kRealtimeAPI, Kind::kBatchAPI, Kind::kTrafficSplitter}) {
    if (KindName(kind) == name) return kind;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<ApiConfig>> ParseApiConfigs(std::string_view yaml_text,
                                                       const ParseOptions& options) {
  if (yaml_text.size() > options.max_config_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.file_name, ": is ", yaml_text.size(), " bytes, more than this cluster takes (",
        options.max_config_bytes, " bytes, limits: config)"));
  }
  absl::StatusOr<std::vector<ApiConfig>> apis;
  try {
    apis = ParseAll(absl::string_view(yaml_text.data(), yaml_text.size()), options);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on some malformed documents only when they are walked.
    apis = absl::InvalidArgumentError(absl::StrCat("invalid yaml: ", e.what()));
  }
  if (!apis.ok()) return InField(options.file_name, apis.status());
  return apis;
}

}  // namespace cortex::config
