#include "backends/local/capacity.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace cortex::backends {

std::string Resources::ToString() const {
  return absl::StrFormat("cpu %dm, mem %d MiB, gpu %d", cpu_milli, mem_bytes >> 20, gpu);
}

}  // namespace cortex::backends

namespace cortex::backends::local {

Resources DetectCapacity() {
  Resources total;
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  total.cpu_milli = (cores > 0 ? cores : 1) * 1000;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") {
      total.mem_bytes = kib * 1024;
      break;
    }
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    (void)entry;
    ++total.gpu;
  }
  return total;
}

std::optional<std::string> Shortfall(const Resources& used, const Resources& request,
                                     const Resources& total) {
  if (used.cpu_milli + request.cpu_milli > total.cpu_milli) {
    return absl::StrFormat(
        "cpu: %gm requested, %gm available", static_cast<double>(request.cpu_milli),
        static_cast<double>(std::max<int64_t>(0, total.cpu_milli - used.cpu_milli)));
  }
  if (used.mem_bytes + request.mem_bytes > total.mem_bytes) {
    return absl::StrFormat("mem: %d MiB requested, %d MiB available", request.mem_bytes >> 20,
                           std::max<int64_t>(0, total.mem_bytes - used.mem_bytes) >> 20);
  }
  if (used.gpu + request.gpu > total.gpu) {
    return absl::StrFormat("gpu: %d requested, %d available", request.gpu,
                           std::max(0, total.gpu - used.gpu));
  }
  return std::nullopt;
}

std::vector<int> PickGpus(const std::set<int>& in_use, int count, int total) {
  std::vector<int> picked;
  for (int i = 0; i < total && static_cast<int>(picked.size()) < count; ++i) {
    if (in_use.count(i) == 0) picked.push_back(i);
  }
  if (static_cast<int>(picked.size()) < count) picked.clear();
  return picked;
}

}  // namespace cortex::backends::local
