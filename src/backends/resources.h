// What one replica or worker asks for (compute: cpu, mem, gpu), as the providers see it.
#pragma once

#include <cstdint>
#include <string>

#include "config/api_config.h"

namespace cortex::backends {

struct Resources {
  int64_t cpu_milli = 0;
  int64_t mem_bytes = 0;  // 0: no limit asked for
  int gpu = 0;

  Resources& operator+=(const Resources& other) {
    cpu_milli += other.cpu_milli;
    mem_bytes += other.mem_bytes;
    gpu += other.gpu;
    return *this;
  }
  static Resources FromCompute(const config::ComputeConfig& compute) {
    return {compute.cpu_milli, compute.mem_bytes.value_or(0), compute.gpu};
  }
  std::string ToString() const;  // "cpu 200m, mem 1024 MiB, gpu 0"
};

}  // namespace cortex::backends
