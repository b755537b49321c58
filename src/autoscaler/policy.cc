#include "autoscaler/policy.h"

#include <algorithm>
#include <climits>
#include <cmath>

namespace cortex::autoscaler {
namespace {

// Products such as 10 * 0.7 come out as 7.000000000000001 and sums of samples as
// 2.0000000001; a plain ceil would turn those into one replica too many. Anything within
// kEpsilon above an integer counts as that integer. Replica counts are small, so an
// absolute tolerance is enough.
constexpr double kEpsilon = 1e-9;

// ceil(x) as an int, forgiving floating-point noise and saturating instead of overflowing
// (a runaway in-flight count must not become undefined behaviour). NaN, which only a
// non-positive target could produce, maps to 0 and is then lifted to 1 by the clamps.
int CeilToInt(double x) {
  if (std::isnan(x)) return 0;
  const double c = std::ceil(x - kEpsilon);
  if (c >= static_cast<double>(INT_MAX / 2)) return INT_MAX / 2;
  if (c <= static_cast<double>(INT_MIN / 2)) return INT_MIN / 2;
  return static_cast<int>(c);
}

// Mean of the samples with now - window < time <= now, or nullopt when there are none. The
// operator's 1 s samples replace the sidecar's 10 s CloudWatch buckets of §7: with 1 s
// resolution the window is exact, so the "newest bucket must be younger than 20 s" check
// collapses into "some sample lies in the window". As in §7 the mean covers only the samples
// that exist: missing seconds are skipped, not counted as zero.
std::optional<double> WindowAverage(const std::vector<Sample>& samples, int64_t window_ms,
                                    int64_t now_ms) {
  double sum = 0;
  int64_t count = 0;
  for (const Sample& s : samples) {
    if (s.time_ms > now_ms - window_ms && s.time_ms <= now_ms) {
      sum += s.in_flight;
      ++count;
    }
  }
  if (count == 0) return std::nullopt;
  return sum / static_cast<double>(count);
}

// A recommendation made at `made` is "within period P" at `now` when now - made < P. §7 leaves
// the boundary open; Cortex compares time.Since(t) <= P, but on a live clock that is strict in
// effect at both ends, and we reproduce that effect on our exact tick grid:
//  * its ticks run 10 s after the previous one *completes*, so the tick made exactly P ago is
//    always slightly older than P and falls out; and
//  * this tick's own recommendation is nanoseconds old, so it is within any P > 0 but not within
//    P == 0, which is what makes a zero period mean "no stabilization in this direction" (with
//    an inclusive boundary, an upscale period of 0 would pin every request to this tick's
//    recommendation and switch off the downscale period too).
// It also matches the strict "now - start < P" test for the first period.
bool Within(int64_t made_ms, int64_t now_ms, int64_t period_ms) {
  return now_ms - made_ms < period_ms;
}

}  // namespace

Decision Tick(const Settings& settings, const std::vector<Sample>& samples, int64_t now_ms,
              State& state) {
  // The first tick starts the stabilization clock whether or not it has data, as in §7.
  if (!state.start_ms.has_value()) state.start_ms = now_ms;

  const int current = state.current;
  Decision decision;
  const std::optional<double> avg = WindowAverage(samples, settings.window_ms, now_ms);
  if (!avg.has_value()) {
    // "Metrics not available yet": no recommendation is recorded and nothing moves. We report
    // the current request so that a caller that compares request with current does nothing.
    decision.recommendation = current;
    decision.request = current;
    return decision;
  }
  decision.has_data = true;
  decision.avg_in_flight = *avg;

  const double raw = *avg / settings.target_replica_concurrency;
  int rec = CeilToInt(raw);

  // Tolerance bands: both bounds are strict, as in §7. A raw value exactly at a band's outer
  // edge is outside it; a raw value equal to current gives rec == current anyway.
  if (current * (1 - settings.downscale_tolerance) < raw && raw < current) rec = current;
  if (current < raw && raw < current * (1 + settings.upscale_tolerance)) rec = current;

  // Factor clamps; stepping by one replica is always allowed, so small APIs can move at all.
  const int downscale_floor =
      std::min(current - 1, CeilToInt(current * settings.max_downscale_factor));
  const int upscale_ceil = std::max(current + 1, CeilToInt(current * settings.max_upscale_factor));
  rec = std::max(rec, downscale_floor);
  rec = std::min(rec, upscale_ceil);

  // No scale-to-zero. Written as two steps rather than std::clamp so that (invalid) settings
  // with min > max cannot hit undefined behaviour; max wins, as in Cortex.
  rec = std::max(rec, 1);
  rec = std::max(rec, settings.min_replicas);
  rec = std::min(rec, settings.max_replicas);
  decision.recommendation = rec;

  // Record before stabilizing: history holds recommendations, not requests. Prune what neither
  // period can see any more.
  state.recommendations.emplace_back(now_ms, rec);
  const int64_t keep_ms = std::max(settings.downscale_stabilization_period_ms,
                                   settings.upscale_stabilization_period_ms);
  while (!state.recommendations.empty() &&
         !Within(state.recommendations.front().first, now_ms, keep_ms)) {
    state.recommendations.pop_front();
  }

  const int64_t since_start_ms = now_ms - *state.start_ms;
  int request = rec;

  // Downscale stabilization: during the first period nothing goes down; afterwards the request
  // is at least the highest recommendation of the period (none within a zero period: no floor).
  if (since_start_ms < settings.downscale_stabilization_period_ms) {
    request = std::max(request, current);
  } else {
    for (const auto& [made_ms, past] : state.recommendations) {
      if (Within(made_ms, now_ms, settings.downscale_stabilization_period_ms)) {
        request = std::max(request, past);
      }
    }
  }

  // Upscale stabilization, applied after (and so winning over) the downscale one: during the
  // first period nothing goes up; afterwards the request is at most the lowest recommendation
  // of the period. As in Cortex v0.24 this is literal §7: once both first periods are over and
  // the upscale period is > 0, its minimum (which includes this tick's recommendation, so is
  // <= rec <= the downscale floor) decides alone, i.e. the downscale period only acts during
  // the first period after start or when the upscale period is 0. Later Cortex releases gate
  // each step on the direction (request < current / request > current); v0.24 does not.
  if (since_start_ms < settings.upscale_stabilization_period_ms) {
    request = std::min(request, current);
  } else {
    for (const auto& [made_ms, past] : state.recommendations) {
      if (Within(made_ms, now_ms, settings.upscale_stabilization_period_ms)) {
        request = std::min(request, past);
      }
    }
  }

  decision.request = request;
  state.current = request;
  return decision;
}

}  // namespace cortex::autoscaler
