// The time, as a port: the control plane reads it through a Clock so that tests can drive it
// (common/testing/fake_clock.h). Thread-safe.
#pragma once

#include <cstdint>

namespace cortex {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;  // unix milliseconds
  int64_t NowSeconds() const { return NowMs() / 1000; }
};

// The wall clock.
const Clock& SystemClock();

}  // namespace cortex
