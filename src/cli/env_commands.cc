// cortex env configure | list | default | delete.
#include <absl/strings/str_cat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/env_config.h"
#include "cli/table.h"

namespace cortex::cli {
namespace {

// Asks on the terminal, showing `fallback`; non-interactive runs take the fallback.
std::string Prompt(const std::string& question, const std::string& fallback) {
  if (!::isatty(STDIN_FILENO)) return fallback;
  std::cout << question << (fallback.empty() ? "" : " [" + fallback + "]") << ": " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer.empty() ? fallback : answer;
}

absl::Status CheckEnvironment(const Environment& env) {
  if (env.name.empty()) return absl::InvalidArgumentError("environment name must not be empty");
  if (env.provider != "local" && env.provider != "kubernetes") {
    return absl::InvalidArgumentError(
        absl::StrCat("provider ", env.provider, " is not supported (choose local or kubernetes)"));
  }
  for (const char* reserved : {"local", "kubernetes"}) {
    if (env.name == reserved && env.provider != reserved) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", reserved, " environment must use the ", reserved, " provider"));
    }
  }
  if (env.operator_endpoint.rfind("http://", 0) != 0 &&
      env.operator_endpoint.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("operator endpoint \"", env.operator_endpoint,
                                                   "\" must start with http:// or https://"));
  }
  return absl::OkStatus();
}

}  // namespace

int EnvConfigure(const EnvFlags& flags) {
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  Environment env;
  env.name = flags.name.empty() ? Prompt("environment name", "local") : flags.name;
  if (const Environment* existing = config->Find(env.name)) env = *existing;
  const char* endpoint_env = std::getenv("CORTEX_OPERATOR_ENDPOINT");
  env.provider = !flags.provider.empty()
                     ? flags.provider
                     : (flags.name.empty() || env.operator_endpoint.empty()
                            ? Prompt("provider (local or kubernetes)",
                                     env.name == "kubernetes" ? "kubernetes" : env.provider)
                            : env.provider);
  env.operator_endpoint =
      !flags.operator_endpoint.empty()
          ? flags.operator_endpoint
          : Prompt("operator endpoint", !env.operator_endpoint.empty() ? env.operator_endpoint
                                        : endpoint_env                 ? endpoint_env
                                                                       : "http://127.0.0.1:8890");
  if (!flags.operator_token.empty()) env.operator_token = flags.operator_token;
  if (env.operator_token.empty()) env.operator_token = Prompt("operator token", "");
  if (absl::Status st = CheckEnvironment(env); !st.ok()) return Fail(st);
  config->Upsert(env);
  if (absl::Status st = SaveCliConfig(*config); !st.ok()) return Fail(st);
  std::cout << "configured " << env.name << " environment\n";
  return 0;
}

int EnvList(const CommonFlags& common) {
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  if (common.output == "json") {  // v0.24's array of environments (tokens left out)
    nlohmann::json out = nlohmann::json::array();
    for (const auto& env : config->environments) {
      out.push_back({{"name", env.name},
                     {"provider", env.provider},
                     {"operator_endpoint", env.operator_endpoint},
                     {"default", env.name == config->default_environment}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (config->environments.empty()) {
    std::cout << "no environments are configured; run `cortex cluster up` or `cortex env "
                 "configure`\n";
    return 0;
  }
  std::string blocks;
  for (const auto& env : config->environments) {
    if (!blocks.empty()) blocks += "\n";
    blocks += RenderKeyValues(
        {{"name", env.name + (env.name == config->default_environment ? " (default)" : "")},
         {"provider", env.provider},
         {"operator endpoint", env.operator_endpoint}});
  }
  std::cout << blocks;
  return 0;
}

int EnvDefault(const std::string& name) {
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  std::string chosen =
      name.empty() ? Prompt("default environment", config->default_environment) : name;
  if (config->Find(chosen) == nullptr) {
    return Fail(absl::NotFoundError(
        absl::StrCat("environment ", chosen, " is not configured (see `cortex env list`)")));
  }
  config->default_environment = chosen;
  if (absl::Status st = SaveCliConfig(*config); !st.ok()) return Fail(st);
  std::cout << "set " << chosen << " as the default environment\n";
  return 0;
}

int EnvDelete(const std::string& name) {
  auto config = LoadCliConfig();
  if (!config.ok()) return Fail(config.status());
  if (config->Find(name) == nullptr) {
    return Fail(absl::NotFoundError(absl::StrCat("environment ", name, " is not configured")));
  }
  std::erase_if(config->environments, [&](const Environment& e) { return e.name == name; });
  if (config->default_environment == name) {
    config->default_environment =
        config->environments.empty() ? "local" : config->environments.front().name;
  }
  if (absl::Status st = SaveCliConfig(*config); !st.ok()) return Fail(st);
  std::cout << "deleted the " << name << " environment\n";
  return 0;
}

}  // namespace cortex::cli
