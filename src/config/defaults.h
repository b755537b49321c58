// Every default of the API configuration that more than one module needs, in one place (the
// rest live beside their parser in config/). Cortex v0.24's values (spec §2).
#pragma once

#include <cstdint>

namespace cortex::config {

inline constexpr int kDefaultMinReplicas = 1;
inline constexpr int kDefaultMaxReplicas = 100;
inline constexpr int kDefaultMaxReplicaConcurrency = 1024;
inline constexpr int64_t kDefaultWindowS = 60;
inline constexpr int64_t kDefaultDownscaleStabilizationS = 300;
inline constexpr int64_t kDefaultUpscaleStabilizationS = 60;
inline constexpr double kDefaultMaxDownscaleFactor = 0.75;
inline constexpr double kDefaultMaxUpscaleFactor = 1.5;
inline constexpr double kDefaultDownscaleTolerance = 0.05;
inline constexpr double kDefaultUpscaleTolerance = 0.05;
inline constexpr const char* kDefaultMaxSurge = "25%";
inline constexpr const char* kDefaultMaxUnavailable = "25%";
inline constexpr int64_t kDefaultCpuMilli = 200;

}  // namespace cortex::config
