#include "common/clock.h"

#include "common/util.h"

namespace cortex {
namespace {

class WallClock : public Clock {
 public:
  int64_t NowMs() const override { return UnixNanos() / 1'000'000; }
};

}  // namespace

const Clock& SystemClock() {
  static const WallClock clock;
  return clock;
}

}  // namespace cortex
