// The CLI's environments, kept in $CORTEX_CLI_CONFIG_DIR/cli.yaml (default ~/.cortex/cli.yaml):
//
//   default_environment: local
//   environments:
//     - {name: local, provider: local, operator_endpoint: http://127.0.0.1:8890,
//        operator_token: ...}
//
// Thread-compatible.
#pragma once

#include <absl/status/statusor.h>

#include <optional>
#include <string>
#include <vector>

namespace cortex::cli {

struct Environment {
  std::string name;
  std::string provider = "local";
  std::string operator_endpoint;
  std::string operator_token;
};

struct CliConfig {
  std::string default_environment = "local";
  std::vector<Environment> environments;

  const Environment* Find(const std::string& name) const;
  // Adds `env` or replaces the one of its name; it becomes the default when the default names
  // no environment (the first one configured, say).
  void Upsert(const Environment& env);
};

// $CORTEX_CLI_CONFIG_DIR, else ~/.cortex.
std::string ConfigDir();

absl::StatusOr<CliConfig> LoadCliConfig();  // a missing file is an empty config
absl::Status SaveCliConfig(const CliConfig& config);

// The environment named `name`, or the default one when `name` is empty.
absl::StatusOr<Environment> ResolveEnvironment(const std::string& name);

}  // namespace cortex::cli
