// Process-independent helpers: hashing, ids, files, time. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace cortex {

// The Cortex version whose behaviour this platform re-implements (reported by `cortex version`,
// the operator and the gateway).
inline constexpr std::string_view kCortexVersion = "0.24.0";
// GET /v2 of the Open Inference Protocol (docs/v2-protocol.md), on the gateway and on replicas.
inline std::string V2ServerMetadata() {
  return std::string(R"({"name":"cortex","version":")") + std::string(kCortexVersion) +
         R"(","extensions":["binary_tensor_data"]})";
}

std::string Sha256Hex(std::string_view data);
// Random lower-case alphanumeric string (not for secrets).
std::string RandomId(size_t length);
// Random hex string from the OS's CSPRNG (for tokens).
std::string RandomToken(size_t bytes);

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);
// Writes to a temporary file beside `path`, fsyncs it and renames it over `path`.
absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data);

int64_t UnixSeconds();
int64_t UnixNanos();
int64_t MonotonicMillis();

// Cortex's id that sorts newest first: hex(2^63-1 - unix nanos).
std::string DecreasingHexId();

// A time as RFC 3339 in UTC ("2026-12-02T14:30:54Z"), as Go's time.Time is written in JSON.
std::string Rfc3339(int64_t unix_seconds);
// The unix seconds of an RFC 3339 time (any offset, fractions dropped); nullopt when malformed.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// "45s", "3m12s", "2h5m", "3d4h" (spec §14).
std::string FormatAge(int64_t seconds);

// A size for people: "10 MiB", "64 KiB", "1000 bytes" (exact: a unit only when it divides).
std::string FormatBytes(uint64_t bytes);

}  // namespace cortex
