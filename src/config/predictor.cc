// The `predictor` section (spec §2), including `models` and `server_side_batching`.

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <absl/strings/string_view.h>
#include <absl/strings/strip.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/quantity.h"
#include "config/sections.h"
#include "config/yaml_reader.h"

namespace cortex::config::internal {
namespace {

constexpr absl::string_view kCortexVersion = "0.24.0";
constexpr absl::string_view kDefaultImageRegistry = "quay.io/cortexlabs/";
constexpr absl::string_view kReservedModelName = "_cortex_default";
constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// A docker path component: [a-z0-9]+ separated by ".", "_", "__" or runs of "-".
bool IsValidPathComponent(absl::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    absl::string_view separator = c.substr(start, i - start);
    bool dashes = separator.find_first_not_of('-') == absl::string_view::npos;
    if (separator != "." && separator != "_" && separator != "__" && !dashes) return false;
  }
  return true;
}

bool IsValidDomain(absl::string_view domain) {
  if (domain.empty()) return false;
  for (char c : domain) {
    if (!IsAlnum(c) && c != '.' && c != '-' && c != ':') return false;
  }
  return true;
}

bool IsValidTag(absl::string_view tag) {
  if (tag.empty() || tag.size() > 128 || tag[0] == '.' || tag[0] == '-') return false;
  for (char c : tag) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

struct ImageRef {
  std::string repository;  // domain and path, without tag or digest
  std::string tag;         // empty when not given
};

// Docker's reference grammar, hand-written (its regex backtracks badly in std::regex).
std::optional<ImageRef> ParseImage(absl::string_view image) {
  absl::string_view rest = image;
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    absl::string_view digest = rest.substr(at + 1);
    size_t colon = digest.find(':');
    if (colon == absl::string_view::npos || colon == 0 || digest.size() - colon - 1 < 32) {
      return std::nullopt;
    }
    rest = rest.substr(0, at);
  }
  ImageRef ref;
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos &&
      (last_slash == absl::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (!IsValidTag(ref.tag)) return std::nullopt;
    rest = rest.substr(0, colon);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  size_t first_path = 0;
  if (parts.size() > 1 && (absl::StrContains(parts[0], ".") || absl::StrContains(parts[0], ":") ||
                           parts[0] == "localhost")) {
    if (!IsValidDomain(parts[0])) return std::nullopt;
    first_path = 1;
  }
  for (size_t i = first_path; i < parts.size(); ++i) {
    if (!IsValidPathComponent(parts[i])) return std::nullopt;
  }
  ref.repository = std::string(rest);
  return ref;
}

absl::StatusOr<std::string> ReadImage(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string image, ReadString(node));
  std::optional<ImageRef> ref = ParseImage(image);
  if (!ref) return NodeError(node, absl::StrCat(Quote(image), " is not a valid docker image path"));
  bool cortex_owned = absl::StartsWith(ref->repository, "cortexlabs/") ||
                      absl::StartsWith(ref->repository, "quay.io/cortexlabs/") ||
                      absl::StartsWith(ref->repository, "docker.io/cortexlabs/");
  if (cortex_owned && !absl::StartsWith(ref->tag, kCortexVersion)) {
    return NodeError(node,
                     absl::StrCat("the specified image (", image, ") has a tag (",
                                  ref->tag.empty() ? "latest" : ref->tag,
                                  ") which does not match your Cortex version (", kCortexVersion,
                                  "); please update the image tag, or remove the image from your "
                                  "configuration file (to use the default value)"));
  }
  return image;
}

absl::StatusOr<std::string> ReadNonEmptyString(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string value, ReadString(node));
  if (value.empty()) return NodeError(node, "cannot be empty");
  return value;
}

// A path inside the project: relative, and never climbing out of it.
absl::StatusOr<std::string> ReadProjectPath(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(std::string path, ReadNonEmptyString(node));
  if (path[0] == '/' || path[0] == '~') {
    return NodeError(node, absl::StrCat(path,
                                        ": must be a relative path (relative to the "
                                        "directory containing your API configuration file)"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return NodeError(node, absl::StrCat(path, ": must be inside the project directory"));
    }
  }
  return path;
}

std::string UnsupportedForType(absl::string_view field, absl::string_view type) {
  return absl::StrCat(field, " is not a supported field for the ", type, " predictor type");
}

std::string DefaultImage(absl::string_view type, const ComputeConfig& compute) {
  absl::string_view device = compute.inf > 0 ? "inf" : compute.gpu > 0 ? "gpu" : "cpu";
  if (type == "tensorflow")
    return absl::StrCat(kDefaultImageRegistry, "tensorflow-predictor:", kCortexVersion);
  if (type == "onnx" && device == "inf") device = "cpu";  // rejected later; keep a sane value
  return absl::StrCat(kDefaultImageRegistry, type, "-predictor-", device, ":", kCortexVersion);
}

std::string DefaultServingImage(const ComputeConfig& compute) {
  absl::string_view device = compute.inf > 0 ? "inf" : compute.gpu > 0 ? "gpu" : "cpu";
  return absl::StrCat(kDefaultImageRegistry, "tensorflow-serving-", device, ":", kCortexVersion);
}

absl::StatusOr<nlohmann::json> ParseModelPaths(const YAML::Node& node, const std::string& type) {
  if (!node.IsSequence()) return NodeError(node, "must be a list");
  if (node.size() == 0) return NodeError(node, "must contain at least 1 element");
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    std::string label = absl::StrCat(i);
    auto check = [&]() -> absl::Status {
      CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(item));
      CONFIG_RETURN_IF_ERROR(map.CheckKeys({"name", "model_path", "signature_key"}));
      CONFIG_ASSIGN_OR_RETURN(std::string name,
                              map.ReadRequired<std::string>("name", ReadNonEmptyString));
      for (char c : name) {
        if (!IsAlnum(c) && c != '_' && c != '-') {
          return map.FieldError("name", absl::StrCat(Quote(name),
                                                     " must contain only letters, "
                                                     "numbers, underscores, and dashes"));
        }
      }
      if (name == kReservedModelName) {
        return map.FieldError(
            "name",
            absl::StrCat(name, ": is a reserved name; please specify a different model name"));
      }
      label = name;
      if (!names.insert(name).second) {
        return map.FieldError(
            "name", absl::StrCat("cannot have multiple models with the same name (", name, ")"));
      }
      CONFIG_RETURN_IF_ERROR(
          map.ReadRequired<std::string>("model_path", ReadNonEmptyString).status());
      CONFIG_RETURN_IF_ERROR(map.Read<std::string>("signature_key", ReadNonEmptyString).status());
      if (map.Has("signature_key") && type != "tensorflow") {
        return map.ErrorAt("signature_key", UnsupportedForType("signature_key", type));
      }
      return absl::OkStatus();
    };
    absl::Status status = check();  // sets `label` first
    CONFIG_RETURN_IF_ERROR(InField(label, status));
  }
  return YamlToJson(node);
}

absl::StatusOr<nlohmann::json> ParseModels(const YAML::Node& node, const ParseContext& ctx,
                                           const std::string& type, int processes) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(node));
  CONFIG_RETURN_IF_ERROR(
      map.CheckKeys({"paths", "dir", "signature_key", "cache_size", "disk_cache_size"}));
  if (map.Has("paths") && map.Has("dir")) {
    return NodeError(node,
                     "please specify either the paths or dir field (both cannot be "
                     "specified at the same time)");
  }
  if (!map.Has("paths") && !map.Has("dir")) {
    return NodeError(node,
                     "please specify either the paths field or dir field (cannot be both "
                     "empty at the same time)");
  }
  if (std::optional<YAML::Node> paths = map.Find("paths")) {
    CONFIG_RETURN_IF_ERROR(InField("paths", ParseModelPaths(*paths, type).status()));
  }
  CONFIG_RETURN_IF_ERROR(map.Read<std::string>("dir", ReadNonEmptyString).status());
  CONFIG_RETURN_IF_ERROR(map.Read<std::string>("signature_key", ReadNonEmptyString).status());
  if (map.Has("signature_key") && type != "tensorflow") {
    return map.ErrorAt("signature_key", UnsupportedForType("signature_key", type));
  }
  auto positive = [](const YAML::Node& n) { return ReadIntInRange(n, 1, kMaxInt); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> cache_size, map.Read<int>("cache_size", positive));
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> disk_cache_size,
                          map.Read<int>("disk_cache_size", positive));
  if (cache_size || disk_cache_size) {
    absl::string_view key = cache_size ? "cache_size" : "disk_cache_size";
    if (ctx.kind != Kind::kRealtimeAPI) {
      return map.ErrorAt(key, absl::StrCat(key, " key is not supported for ",
                                           std::string(KindName(ctx.kind)), " kind"));
    }
    if (!cache_size || !disk_cache_size) {
      return map.ErrorAt(key,
                         "please specify both \"cache_size\" and \"disk_cache_size\" or "
                         "neither of them");
    }
    if (*cache_size > *disk_cache_size) {
      return map.ErrorAt("cache_size", absl::StrCat("cache_size (", *cache_size,
                                                    ") cannot be greater than disk_cache_size (",
                                                    *disk_cache_size, ")"));
    }
    if (processes != 1) {
      return map.ErrorAt(
          "cache_size",
          absl::StrCat("when dynamic model caching is enabled (cache_size and disk_cache_size "
                       "are set), processes_per_replica must be 1, while currently it's set to ",
                       processes));
    }
  }
  return YamlToJson(node);
}

absl::StatusOr<BatchingConfig> ParseServerSideBatching(const YAML::Node& node,
                                                       const PredictorConfig& predictor,
                                                       const ComputeConfig& compute) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(node));
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"max_batch_size", "batch_interval"}));
  auto batch_size = [](const YAML::Node& n) { return ReadIntInRange(n, 2, 1024); };
  CONFIG_ASSIGN_OR_RETURN(int max_batch_size, map.ReadRequired<int>("max_batch_size", batch_size));
  auto interval = [](const YAML::Node& n) -> absl::StatusOr<std::string> {
    CONFIG_ASSIGN_OR_RETURN(std::string text, ReadString(n));
    absl::StatusOr<int64_t> nanos = ParseDurationNanos(text);
    if (!nanos.ok()) return NodeError(n, nanos.status().message());
    if (*nanos <= 0) return NodeError(n, "must be greater than 0s");
    return text;
  };
  CONFIG_ASSIGN_OR_RETURN(std::string batch_interval,
                          map.ReadRequired<std::string>("batch_interval", interval));
  BatchingConfig batching{max_batch_size, batch_interval, *ParseDurationNanos(batch_interval)};
  // A python or onnx batch takes one slot of the replica (docs/batching.md); TensorFlow Serving
  // needed a thread per request of a batch, hence Cortex's limits.
  if (predictor.type != "tensorflow") return batching;
  if (compute.inf > 0 && max_batch_size > predictor.threads_per_process) {
    return map.ErrorAt("max_batch_size",
                       absl::StrCat("max_batch_size (", max_batch_size,
                                    ") must be less than or equal to threads_per_process (",
                                    predictor.threads_per_process, ")"));
  }
  int64_t concurrency =
      static_cast<int64_t>(predictor.processes_per_replica) * predictor.threads_per_process;
  if (max_batch_size > concurrency) {
    return map.ErrorAt("max_batch_size",
                       absl::StrCat("max_batch_size (", max_batch_size,
                                    ") must be less than or equal to processes_per_replica * "
                                    "threads_per_process (",
                                    predictor.processes_per_replica, " * ",
                                    predictor.threads_per_process, " = ", concurrency, ")"));
  }
  return batching;
}

absl::StatusOr<std::map<std::string, std::string>> ParseEnv(const YAML::Node& node) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(node));
  std::map<std::string, std::string> env;
  for (const auto& kv : node) {
    const std::string& key = kv.first.Scalar();
    if (absl::StartsWith(key, "CORTEX_")) {
      return map.FieldError(key, "environment variables starting with CORTEX_ are reserved");
    }
    if (key.empty()) return NodeError(kv.first, "environment variable names cannot be empty");
    absl::StatusOr<std::string> value = ReadString(kv.second);
    if (!value.ok()) return InField(key, value.status());
    env[key] = *std::move(value);
  }
  return env;
}

}  // namespace

absl::StatusOr<PredictorConfig> ParsePredictor(const YAML::Node& node, const ParseContext& ctx,
                                               const ComputeConfig& compute) {
  CONFIG_ASSIGN_OR_RETURN(YamlMap map, YamlMap::Create(node));
  CONFIG_RETURN_IF_ERROR(map.CheckKeys({"type", "path", "model_path", "models", "signature_key",
                                        "server_side_batching", "processes_per_replica",
                                        "threads_per_process", "config", "python_path", "image",
                                        "tensorflow_serving_image", "env", "python"}));
  PredictorConfig p;
  auto read_type = [](const YAML::Node& n) {
    return ReadEnum(n, {"python", "tensorflow", "onnx"});
  };
  CONFIG_ASSIGN_OR_RETURN(p.type, map.ReadRequired<std::string>("type", read_type));
  CONFIG_ASSIGN_OR_RETURN(p.path, map.ReadRequired<std::string>("path", ReadProjectPath));
  if (ctx.options.file_exists && !ctx.options.file_exists(p.path)) {
    return map.FieldError("path", absl::StrCat(p.path, ": file does not exist"));
  }

  auto processes = [](const YAML::Node& n) { return ReadIntInRange(n, 1, 100); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> processes_per_replica,
                          map.Read<int>("processes_per_replica", processes));
  p.processes_per_replica = processes_per_replica.value_or(1);
  auto threads = [](const YAML::Node& n) { return ReadIntInRange(n, 1, kMaxInt); };
  CONFIG_ASSIGN_OR_RETURN(std::optional<int> threads_per_process,
                          map.Read<int>("threads_per_process", threads));
  p.threads_per_process = threads_per_process.value_or(1);
  if (ctx.kind == Kind::kBatchAPI) {
    if (p.processes_per_replica != 1) {
      return map.FieldError("processes_per_replica", "must be 1 for BatchAPI kind");
    }
    if (p.threads_per_process != 1) {
      return map.FieldError("threads_per_process", "must be 1 for BatchAPI kind");
    }
  }

  CONFIG_ASSIGN_OR_RETURN(p.model_path, map.Read<std::string>("model_path", ReadNonEmptyString));
  if (std::optional<YAML::Node> models = map.Find("models")) {
    absl::StatusOr<nlohmann::json> parsed =
        ParseModels(*models, ctx, p.type, p.processes_per_replica);
    if (!parsed.ok()) return InField("models", parsed.status());
    p.models = *std::move(parsed);
    if (p.model_path) {
      return map.ErrorAt("models",
                         "please specify either the model_path or models field (both "
                         "cannot be specified at the same time)");
    }
  }
  if (p.type != "python" && !p.model_path && p.models.is_null()) {
    return NodeError(node, absl::StrCat("at least one model must be specified for the ", p.type,
                                        " predictor type; use either the model_path or models "
                                        "field"));
  }
  CONFIG_ASSIGN_OR_RETURN(p.signature_key,
                          map.Read<std::string>("signature_key", ReadNonEmptyString));
  if (p.signature_key && p.type != "tensorflow") {
    return map.ErrorAt("signature_key", UnsupportedForType("signature_key", p.type));
  }
  if (std::optional<YAML::Node> ssb = map.Find("server_side_batching")) {
    if (ctx.kind != Kind::kRealtimeAPI) {
      return map.ErrorAt("server_side_batching",
                         absl::StrCat("server_side_batching key is not supported for ",
                                      std::string(KindName(ctx.kind)), " kind"));
    }
    absl::StatusOr<BatchingConfig> parsed = ParseServerSideBatching(*ssb, p, compute);
    if (!parsed.ok()) return InField("server_side_batching", parsed.status());
    p.server_side_batching = *std::move(parsed);
  }

  if (std::optional<YAML::Node> config = map.Find("config")) {
    absl::StatusOr<YamlMap> config_map = YamlMap::Create(*config);  // string keys only
    if (!config_map.ok()) return InField("config", config_map.status());
    absl::StatusOr<nlohmann::json> json = YamlToJson(*config);
    if (!json.ok()) return InField("config", json.status());
    p.config = *std::move(json);
  }

  auto python_path = [&](const YAML::Node& n) -> absl::StatusOr<std::string> {
    CONFIG_ASSIGN_OR_RETURN(std::string path, ReadProjectPath(n));
    absl::string_view clean = path;
    while (absl::ConsumePrefix(&clean, "./")) {
    }
    while (absl::ConsumeSuffix(&clean, "/")) {
    }
    if (clean.empty() || clean == ".") {
      return NodeError(n, absl::StrCat(path,
                                       ": is an invalid path (the project directory is "
                                       "already on the python path)"));
    }
    if (ctx.options.dir_exists && !ctx.options.dir_exists(std::string(clean))) {
      return NodeError(n, absl::StrCat(clean,
                                       ": path does not exist, or has been excluded from "
                                       "your project directory"));
    }
    return std::string(clean);
  };
  CONFIG_ASSIGN_OR_RETURN(p.python_path, map.Read<std::string>("python_path", python_path));

  CONFIG_ASSIGN_OR_RETURN(std::optional<std::string> image,
                          map.Read<std::string>("image", ReadImage));
  p.image = image ? *image : DefaultImage(p.type, compute);
  CONFIG_ASSIGN_OR_RETURN(p.tensorflow_serving_image,
                          map.Read<std::string>("tensorflow_serving_image", ReadImage));
  if (p.type != "tensorflow" && p.tensorflow_serving_image) {
    return map.ErrorAt("tensorflow_serving_image",
                       UnsupportedForType("tensorflow_serving_image", p.type));
  }
  if (p.type == "tensorflow" && !p.tensorflow_serving_image) {
    p.tensorflow_serving_image = DefaultServingImage(compute);
  }

  if (std::optional<YAML::Node> env = map.Find("env")) {
    absl::StatusOr<std::map<std::string, std::string>> parsed = ParseEnv(*env);
    if (!parsed.ok()) return InField("env", parsed.status());
    p.env = *std::move(parsed);
  }

  CONFIG_ASSIGN_OR_RETURN(p.python, map.Read<std::string>("python", ReadNonEmptyString));
  if (p.python && !ctx.local()) {
    return map.ErrorAt("python", absl::StrCat("python is not supported on ", ctx.options.provider,
                                              " provider (only on the local provider)"));
  }
  return p;
}

}  // namespace cortex::config::internal

namespace cortex::config {

bool IsCortexDefaultImage(std::string_view image) {
  return absl::StartsWith(absl::string_view(image.data(), image.size()),
                          internal::kDefaultImageRegistry);
}

}  // namespace cortex::config
