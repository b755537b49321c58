// What replicas ask for and what the machine has: the local provider's fit check (spec §2
// compute: a replica that does not fit is "compute unavailable") and whole-GPU assignment.
// Pure functions except Detect(); thread-compatible.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cortex::op {

struct Resources {
  int64_t cpu_milli = 0;
  int64_t mem_bytes = 0;
  int gpu = 0;

  Resources& operator+=(const Resources& other);
  // From an API spec's "compute" section ("200m", "1Gi", gpu count).
  static Resources FromCompute(const nlohmann::json& compute);
  std::string ToString() const;  // "cpu 200m, mem 1Gi, gpu 0"
};

// This machine: cores × 1000 milli-CPUs, MemTotal, and the NVIDIA GPUs the driver lists.
Resources DetectCapacity();

// Empty when `request` fits beside `used` within `total`; otherwise which resource is short,
// e.g. "cpu: 2 requested, 0.4 available".
std::optional<std::string> Shortfall(const Resources& used, const Resources& request,
                                     const Resources& total);

// The lowest `count` GPU indices below `total` that are not in `in_use` (empty if too few).
std::vector<int> PickGpus(const std::set<int>& in_use, int count, int total);

}  // namespace cortex::op
