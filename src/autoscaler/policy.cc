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
// the boundary open; Cortex compares time.Since(t) <= P on a live clock, where its ticks run
// 10 s after the previous one *completes*, so the tick made exactly P ago is always slightly
// older than P and falls out. On our exact 10 s grid the strict comparison reproduces that: a
// 60 s period sees six recommendations (now, now-10 s, ..., now-50 s), a zero period none. It
// also matches the strict "now - start < P" test for the first period.
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

  // Stabilization. §7's pseudo-code applies the downscale floor and then the upscale ceiling
  // unconditionally. Read literally that defeats the downscale period: the upscale ceiling (the
  // lowest recommendation of its period, this tick's included) is <= rec, so once the upscale
  // period is over it alone decides, and an idle API with the defaults (5 m down, 1 m up)
  // shrinks after 1 m and then every tick. That is Cortex bug #1846, which contradicts §7's
  // "limited by the factor and stabilization rules", §18's "never moves in a given direction
  // during the first stabilization period" and the documented meaning of the field. We use
  // the form Cortex adopted when fixing it: each period only acts on a move in its own
  // direction, and can only slow that move, never turn it around (the floor is capped at
  // current, the ceiling raised to current). With an upscale period of 0 the literal form is
  // not defeated, and both give the same requests.
  const int64_t since_start_ms = now_ms - *state.start_ms;
  int request = rec;
  if (rec < current) {
    // Down: nothing during the first period; afterwards at least the highest recommendation
    // of the period (no floor for a zero period).
    if (since_start_ms < settings.downscale_stabilization_period_ms) {
      request = current;
    } else {
      int floor = rec;
      for (const auto& [made_ms, past] : state.recommendations) {
        if (Within(made_ms, now_ms, settings.downscale_stabilization_period_ms)) {
          floor = std::max(floor, past);
        }
      }
      request = std::max(rec, std::min(floor, current));
    }
  } else if (rec > current) {
    // Up: nothing during the first period; afterwards at most the lowest recommendation of
    // the period (no ceiling for a zero period).
    if (since_start_ms < settings.upscale_stabilization_period_ms) {
      request = current;
    } else {
      int ceiling = rec;
      for (const auto& [made_ms, past] : state.recommendations) {
        if (Within(made_ms, now_ms, settings.upscale_stabilization_period_ms)) {
          ceiling = std::min(ceiling, past);
        }
      }
      request = std::min(rec, std::max(ceiling, current));
    }
  }

  decision.request = request;
  state.current = request;
  return decision;
}

}  // namespace cortex::autoscaler
