// Shell completion for the CLI (`cortex completion bash|zsh`), generated from its command tree:
// the subcommands and flags of every visible command, so that it never falls behind the CLI.
// As Cortex v0.24's, the script also completes the `cx` alias and defines it.
#pragma once

#include <absl/status/statusor.h>

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace cortex::cli {

// The completion script for `shell` ("bash" or "zsh"), or InvalidArgument for another shell.
absl::StatusOr<std::string> CompletionScript(const CLI::App& app, std::string_view shell);

}  // namespace cortex::cli
