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

// Canonical quantity strings that ParseCpuMilli / ParseMemBytes read back to the same value.
std::string FormatCpuMilli(int64_t milli);  // 200 -> "200m", 2000 -> "2"
std::string FormatMemBytes(int64_t bytes);  // 1073741824 -> "1Gi", 500000000 -> "500M"

}  // namespace cortex::config::internal
