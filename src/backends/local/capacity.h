// What the machine has: the local provider's fit check (spec §2 compute: a replica that does not
// fit is "compute unavailable") and whole-GPU assignment.
// Pure functions except Detect(); thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/resources.h"

namespace cortex::backends::local {

// This machine: cores × 1000 milli-CPUs, MemTotal, and the NVIDIA GPUs the driver lists.
Resources DetectCapacity();

// Empty when `request` fits beside `used` within `total`; otherwise which resource is short,
// e.g. "cpu: 2 requested, 0.4 available".
std::optional<std::string> Shortfall(const Resources& used, const Resources& request,
                                     const Resources& total);

// The lowest `count` GPU indices below `total` that are not in `in_use` (empty if too few).
std::vector<int> PickGpus(const std::set<int>& in_use, int count, int total);

}  // namespace cortex::backends::local
