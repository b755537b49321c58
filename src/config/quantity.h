// Quantity and duration helpers shared by the config module's files (not part of its API; the
// public parsers are declared in config/api_config.h).
#pragma once

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>

#include <cstdint>
#include <string>

namespace cortex::config::internal {

// A Go-style duration ("100ms", "1m30s", "-2h") in nanoseconds.
absl::StatusOr<int64_t> ParseDurationNanos(absl::string_view text);

}  // namespace cortex::config::internal
