#include "cli/env_config.h"

#include <absl/strings/str_cat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "common/util.h"

namespace cortex::cli {

const Environment* CliConfig::Find(const std::string& name) const {
  for (const auto& env : environments) {
    if (env.name == name) return &env;
  }
  return nullptr;
}

void CliConfig::Upsert(const Environment& env) {
  auto existing = std::find_if(environments.begin(), environments.end(),
                               [&](const Environment& e) { return e.name == env.name; });
  if (existing != environments.end()) {
    *existing = env;
  } else {
    environments.push_back(env);
  }
  if (Find(default_environment) == nullptr) default_environment = env.name;
}

std::string ConfigDir() {
  if (const char* dir = std::getenv("CORTEX_CLI_CONFIG_DIR"); dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home && *home ? home : "/root", "/.cortex");
}

absl::StatusOr<CliConfig> LoadCliConfig() {
  CliConfig config;
  std::string path = ConfigDir() + "/cli.yaml";
  if (!std::filesystem::exists(path)) return config;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root["default_environment"]) {
      config.default_environment = root["default_environment"].as<std::string>();
    }
    for (const auto& node : root["environments"]) {
      Environment env;
      env.name = node["name"].as<std::string>();
      if (node["provider"]) env.provider = node["provider"].as<std::string>();
      if (node["operator_endpoint"])
        env.operator_endpoint = node["operator_endpoint"].as<std::string>();
      if (node["operator_token"]) env.operator_token = node["operator_token"].as<std::string>();
      config.environments.push_back(env);
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return config;
}

absl::Status SaveCliConfig(const CliConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "default_environment" << YAML::Value
      << config.default_environment << YAML::Key << "environments" << YAML::Value << YAML::BeginSeq;
  for (const auto& env : config.environments) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << env.name << YAML::Key
        << "provider" << YAML::Value << env.provider;
    if (!env.operator_endpoint.empty()) {
      out << YAML::Key << "operator_endpoint" << YAML::Value << env.operator_endpoint;
    }
    if (!env.operator_token.empty()) {
      out << YAML::Key << "operator_token" << YAML::Value << env.operator_token;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  std::filesystem::create_directories(ConfigDir());
  // Tokens live here: a directory an earlier version made 0755 is closed to other users too.
  std::error_code ignored;
  std::filesystem::permissions(ConfigDir(), std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ignored);
  return WriteFileAtomic(ConfigDir() + "/cli.yaml", std::string(out.c_str()) + "\n");
}

absl::StatusOr<Environment> ResolveEnvironment(const std::string& name) {
  auto config = LoadCliConfig();
  if (!config.ok()) return config.status();
  std::string wanted = name.empty() ? config->default_environment : name;
  if (const Environment* env = config->Find(wanted)) return *env;
  if (wanted == "local") {
    return absl::FailedPreconditionError(
        "the local environment is not configured yet; start the local cluster with `cortex "
        "cluster up`");
  }
  return absl::NotFoundError(
      absl::StrCat("environment ", wanted, " is not configured (see `cortex env list`)"));
}

}  // namespace cortex::cli
